using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Launches <see cref="PackKernels"/> and <see cref="Mx8PackKernels"/>: storage form of MXFP4, TetraJet-v2 NVFP4 and
/// MXFP8 along the last axis, and back.
/// </summary>
public static class GpuPacking
{
    static readonly MethodInfo PackMxDef = Def(nameof(PackKernels.PackMxLast)), PackNvDef = Def(nameof(PackKernels.PackNvLast)),
        UnpackMxDef = Def(nameof(PackKernels.UnpackMxLast)), UnpackNvDef = Def(nameof(PackKernels.UnpackNvLast));

    static MethodInfo Def(string name) => typeof(PackKernels).GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;

    static (Type io, Type elem) Io(bool bf16) => bf16 ? (typeof(Bf16Io), typeof(ushort)) : (typeof(F32Io), typeof(float));

    static readonly MethodInfo PackMx8Def = typeof(Mx8PackKernels).GetMethod(nameof(Mx8PackKernels.PackMx8Last))!,
        UnpackMx8Def = typeof(Mx8PackKernels).GetMethod(nameof(Mx8PackKernels.UnpackMx8Last))!;

    static MethodInfo PackKernel(QuantSpec spec, bool bf16)
    {
        var (io, elem) = Io(bf16);
        if (spec.Format == QuantFormat.MXFP8) return PackMx8Def.MakeGenericMethod(io, elem);
        return spec.Format == QuantFormat.MXFP4
            ? PackMxDef.MakeGenericMethod(io, elem, spec.ScaleRule == ScaleRule.Ocp ? typeof(Mxfp4Ocp) : typeof(Mxfp4TetraJet))
            : PackNvDef.MakeGenericMethod(io, elem);
    }

    static MethodInfo UnpackKernel(QuantSpec spec, bool bf16)
    {
        var (io, elem) = Io(bf16);
        if (spec.Format == QuantFormat.MXFP8) return UnpackMx8Def.MakeGenericMethod(io, elem);
        return (spec.Format == QuantFormat.MXFP4 ? UnpackMxDef : UnpackNvDef).MakeGenericMethod(io, elem);
    }

    static readonly MethodInfo MxFromPackedDef = typeof(PackedSourceKernels).GetMethod(nameof(PackedSourceKernels.MxFirstFromPacked))!,
        NvFromPackedDef = typeof(PackedSourceKernels).GetMethod(nameof(PackedSourceKernels.NvFirstFromPacked))!;

    /// <summary>Whether <see cref="LaunchQuantizeFromPacked"/> handles this re-quantizer: MXFP4 or TetraJet-v2 NVFP4 along the first axis, RTN or SR.</summary>
    public static bool CanQuantizeFromPacked(QuantSpec source, QuantSpec target) =>
        source.Format is QuantFormat.MXFP4 or QuantFormat.NVFP4 && !source.Tile16
        && target.Format is QuantFormat.MXFP4 or QuantFormat.NVFP4 && !target.Tile16 && target.Rounding != Rounding.EmaGuided;

    static MethodInfo FromPackedKernel(QuantSpec source, QuantSpec target, bool bf16, bool hadamard)
    {
        var (io, elem) = Io(bf16);
        var src = source.Format == QuantFormat.NVFP4 ? typeof(PackedNv) : typeof(PackedMx);
        var round = target.Rounding == Rounding.Stochastic ? typeof(RoundStochastic) : typeof(RoundNearest);
        var had = hadamard ? typeof(WithHadamard) : typeof(NoHadamard);
        return target.Format == QuantFormat.MXFP4
            ? MxFromPackedDef.MakeGenericMethod(io, elem, src, target.ScaleRule == ScaleRule.Ocp ? typeof(Mxfp4Ocp) : typeof(Mxfp4TetraJet), round, had)
            : NvFromPackedDef.MakeGenericMethod(io, elem, src, round, had);
    }

    /// <summary>
    /// y [rows, cols] = Q(RHT?(unpack(source))) along the first axis, in one pass over the storage; source rows past
    /// <paramref name="sourceRows"/> are zeros (token-axis padding).
    /// </summary>
    public static void LaunchQuantizeFromPacked(IKernelRunner runner, object codes, object scales, object outer, object y, object ema,
        int rows, int cols, int sourceRows, QuantSpec source, QuantSpec target, bool bf16, ulong seed, ulong stream, uint? hadamardSigns)
    {
        if (!CanQuantizeFromPacked(source, target)) throw new ArgumentException($"no packed-source kernel quantizes {target} from {source}");
        if (hadamardSigns is not null && rows % Hadamard.Size != 0) throw new ArgumentException($"the RHT along the first axis needs rows a multiple of 16, got {rows}");
        if ((long)rows * cols == 0) return;
        int run = target.Format == QuantFormat.NVFP4 ? 128 : 32;
        runner.Launch(FromPackedKernel(source, target, bf16, hadamardSigns is not null), (long)cols * ((rows + run - 1) / run),
            codes, scales, outer, y, ema, rows, cols, sourceRows, seed, stream, hadamardSigns ?? 0u);
    }

    /// <summary>Every instantiation (PTX compile test).</summary>
    public static IEnumerable<MethodInfo> AllKernels()
    {
        foreach (bool bf16 in new[] { false, true })
            foreach (var source in new QuantSpec[] { new(QuantFormat.MXFP4), new(QuantFormat.NVFP4) })
                foreach (var target in new QuantSpec[] { new(QuantFormat.MXFP4, Rounding.Stochastic), new(QuantFormat.MXFP4, Rounding.Nearest, ScaleRule.Ocp), new(QuantFormat.NVFP4, Rounding.Stochastic) })
                    foreach (bool had in new[] { false, true })
                        yield return FromPackedKernel(source, target, bf16, had);
        foreach (bool bf16 in new[] { false, true })
            foreach (var spec in new QuantSpec[] { new(QuantFormat.MXFP4), new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp), new(QuantFormat.NVFP4), new(QuantFormat.MXFP8) })
            {
                yield return PackKernel(spec, bf16);
                if (spec.ScaleRule == ScaleRule.TetraJet) yield return UnpackKernel(spec, bf16);
            }
    }

    static void Check(QuantSpec spec, long cols)
    {
        if (!DevicePacking.CanPack(spec, cols)) throw new ArgumentException($"{spec} along a last axis of {cols} has no device packing");
    }

    /// <summary>
    /// Codes (rows·cols/4 words: 16-bit for FP4, 32-bit for MXFP8), scales (one byte per block) and, for NVFP4, outer
    /// scales (one float per 128) of Q(x) = q.
    /// </summary>
    public static void LaunchPack(IKernelRunner runner, object x, object q, object codes, object scales, object outer, int rows, int cols, QuantSpec spec, bool bf16)
    {
        Check(spec, cols);
        if ((long)rows * cols == 0) return;
        long threads = (long)rows * ((cols + 127) / 128) * 32;
        if (spec.Format is QuantFormat.MXFP4 or QuantFormat.MXFP8) runner.Launch(PackKernel(spec, bf16), threads, x, q, codes, scales, rows, cols);
        else runner.Launch(PackKernel(spec, bf16), threads, x, q, codes, scales, outer, rows, cols);
    }

    /// <summary>The dequantized values of <paramref name="count"/> elements in storage form.</summary>
    public static void LaunchUnpack(IKernelRunner runner, object codes, object scales, object outer, object y, long count, QuantSpec spec, bool bf16)
    {
        if (count == 0) return;
        if (spec.Format is QuantFormat.MXFP4 or QuantFormat.MXFP8) runner.Launch(UnpackKernel(spec, bf16), count / 4, codes, scales, y, count);
        else runner.Launch(UnpackKernel(spec, bf16), count / 4, codes, scales, outer, y, count);
    }

    /// <summary><see cref="LaunchQuantizeFromPacked"/> on an ILGPU accelerator, float32 (the CPU-accelerator tests).</summary>
    public static float[] QuantizeFromPacked(Accelerator acc, byte[] codes, byte[] scales, float[] outer, int rows, int cols, int sourceRows,
        QuantSpec source, QuantSpec target, ulong seed, ulong stream, uint? hadamardSigns)
    {
        using var cb = acc.Allocate1D(codes);
        using var sb = acc.Allocate1D(scales);
        using var ob = acc.Allocate1D(outer.Length == 0 ? new float[1] : outer);
        using var yb = acc.Allocate1D<float>((long)rows * cols);
        using var eb = acc.Allocate1D<float>(1);
        ArrayView<byte> cv = cb.View, sv = sb.View;
        ArrayView<float> ov = ob.View, yv = yb.View, ev = eb.View;
        LaunchQuantizeFromPacked(new IlgpuRunner(acc), cv, sv, ov, yv, ev, rows, cols, sourceRows, source, target, false, seed, stream, hadamardSigns);
        acc.Synchronize();
        return yb.GetAsArray1D();
    }

    /// <summary>Pack and unpack on an ILGPU accelerator, float32 (the CPU-accelerator tests).</summary>
    public static (byte[] Codes, byte[] Scales, float[] Outer, float[] Values) RoundTrip(Accelerator acc, float[] x, float[] q, int rows, int cols, QuantSpec spec)
    {
        int n = rows * cols, nScales = n / spec.Block, nOuter = spec.Format == QuantFormat.NVFP4 ? n / 128 : 1;
        if (spec.Format == QuantFormat.MXFP8) return RoundTripMx8(acc, x, q, rows, cols, spec);
        using var xb = acc.Allocate1D(x);
        using var qb = acc.Allocate1D(q);
        using var cb = acc.Allocate1D<ushort>(n / 4);
        using var sb = acc.Allocate1D<byte>(nScales);
        using var ob = acc.Allocate1D<float>(nOuter);
        using var yb = acc.Allocate1D<float>(n);
        ArrayView<float> xv = xb.View, qv = qb.View, ov = ob.View, yv = yb.View;
        ArrayView<ushort> cv = cb.View;
        ArrayView<byte> sv = sb.View;
        var runner = new IlgpuRunner(acc);
        LaunchPack(runner, xv, qv, cv, sv, ov, rows, cols, spec, false);
        LaunchUnpack(runner, cv, sv, ov, yv, n, spec, false);
        acc.Synchronize();
        var words = cb.GetAsArray1D();
        var codes = new byte[n / 2];
        for (int k = 0; k < words.Length; k++) { codes[2 * k] = (byte)words[k]; codes[2 * k + 1] = (byte)(words[k] >> 8); }
        return (codes, sb.GetAsArray1D(), spec.Format == QuantFormat.NVFP4 ? ob.GetAsArray1D() : [], yb.GetAsArray1D());
    }

    /// <summary><see cref="RoundTrip"/> for MXFP8: 32-bit code words, one byte per element.</summary>
    static (byte[] Codes, byte[] Scales, float[] Outer, float[] Values) RoundTripMx8(Accelerator acc, float[] x, float[] q, int rows, int cols, QuantSpec spec)
    {
        int n = rows * cols;
        using var xb = acc.Allocate1D(x);
        using var qb = acc.Allocate1D(q);
        using var cb = acc.Allocate1D<uint>(n / 4);
        using var sb = acc.Allocate1D<byte>(n / 32);
        using var ob = acc.Allocate1D<float>(1);
        using var yb = acc.Allocate1D<float>(n);
        ArrayView<float> xv = xb.View, qv = qb.View, ov = ob.View, yv = yb.View;
        ArrayView<uint> cv = cb.View;
        ArrayView<byte> sv = sb.View;
        var runner = new IlgpuRunner(acc);
        LaunchPack(runner, xv, qv, cv, sv, ov, rows, cols, spec, false);
        LaunchUnpack(runner, cv, sv, ov, yv, n, spec, false);
        acc.Synchronize();
        var codes = new byte[n];
        Buffer.BlockCopy(cb.GetAsArray1D(), 0, codes, 0, n);   // little-endian words: element 4k + j in byte j
        return (codes, sb.GetAsArray1D(), [], yb.GetAsArray1D());
    }
}
