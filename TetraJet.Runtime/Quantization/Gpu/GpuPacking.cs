using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace TetraJet.Quantization.Gpu;

/// <summary>Launches <see cref="PackKernels"/>: storage form of MXFP4 and TetraJet-v2 NVFP4 along the last axis, and back.</summary>
public static class GpuPacking
{
    static readonly MethodInfo PackMxDef = Def(nameof(PackKernels.PackMxLast)), PackNvDef = Def(nameof(PackKernels.PackNvLast)),
        UnpackMxDef = Def(nameof(PackKernels.UnpackMxLast)), UnpackNvDef = Def(nameof(PackKernels.UnpackNvLast));

    static MethodInfo Def(string name) => typeof(PackKernels).GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;

    static (Type io, Type elem) Io(bool bf16) => bf16 ? (typeof(Bf16Io), typeof(ushort)) : (typeof(F32Io), typeof(float));

    static MethodInfo PackKernel(QuantSpec spec, bool bf16)
    {
        var (io, elem) = Io(bf16);
        return spec.Format == QuantFormat.MXFP4
            ? PackMxDef.MakeGenericMethod(io, elem, spec.ScaleRule == ScaleRule.Ocp ? typeof(Mxfp4Ocp) : typeof(Mxfp4TetraJet))
            : PackNvDef.MakeGenericMethod(io, elem);
    }

    static MethodInfo UnpackKernel(QuantSpec spec, bool bf16)
    {
        var (io, elem) = Io(bf16);
        return (spec.Format == QuantFormat.MXFP4 ? UnpackMxDef : UnpackNvDef).MakeGenericMethod(io, elem);
    }

    /// <summary>Every instantiation (PTX compile test).</summary>
    public static IEnumerable<MethodInfo> AllKernels()
    {
        foreach (bool bf16 in new[] { false, true })
            foreach (var spec in new QuantSpec[] { new(QuantFormat.MXFP4), new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp), new(QuantFormat.NVFP4) })
            {
                yield return PackKernel(spec, bf16);
                if (spec.ScaleRule == ScaleRule.TetraJet) yield return UnpackKernel(spec, bf16);
            }
    }

    static void Check(QuantSpec spec, long cols)
    {
        if (!DevicePacking.CanPack(spec, cols)) throw new ArgumentException($"{spec} along a last axis of {cols} has no device packing");
    }

    /// <summary>Codes (rows·cols/4 words), scales (one byte per block) and, for NVFP4, outer scales (one float per 128) of Q(x) = q.</summary>
    public static void LaunchPack(IKernelRunner runner, object x, object q, object codes, object scales, object outer, int rows, int cols, QuantSpec spec, bool bf16)
    {
        Check(spec, cols);
        if ((long)rows * cols == 0) return;
        long threads = (long)rows * (cols / 128) * 32;
        if (spec.Format == QuantFormat.MXFP4) runner.Launch(PackKernel(spec, bf16), threads, x, q, codes, scales, rows, cols);
        else runner.Launch(PackKernel(spec, bf16), threads, x, q, codes, scales, outer, rows, cols);
    }

    /// <summary>The dequantized values of <paramref name="count"/> elements in storage form.</summary>
    public static void LaunchUnpack(IKernelRunner runner, object codes, object scales, object outer, object y, long count, QuantSpec spec, bool bf16)
    {
        if (count == 0) return;
        if (spec.Format == QuantFormat.MXFP4) runner.Launch(UnpackKernel(spec, bf16), count / 4, codes, scales, y, count);
        else runner.Launch(UnpackKernel(spec, bf16), count / 4, codes, scales, outer, y, count);
    }

    /// <summary>Pack and unpack on an ILGPU accelerator, float32 (the CPU-accelerator tests).</summary>
    public static (byte[] Codes, byte[] Scales, float[] Outer, float[] Values) RoundTrip(Accelerator acc, float[] x, float[] q, int rows, int cols, QuantSpec spec)
    {
        int n = rows * cols, nScales = n / spec.Block, nOuter = spec.Format == QuantFormat.NVFP4 ? n / 128 : 1;
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
}
