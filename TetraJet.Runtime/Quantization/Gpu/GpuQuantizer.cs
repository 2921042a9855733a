using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using TetraJet.Interop;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The GPU quantizer: same contract and bits as <see cref="ReferenceQuantizer.Quantize"/> (plus the optional RHT of
/// <see cref="Quantizer.Quantize"/>). Picks the specialised kernel for (format, rounding, axis, dtype, RHT) and launches
/// it on a runner: <see cref="CudaRunner"/> for torch CUDA tensors (in place, torch's context and stream, no host
/// round trip) or <see cref="IlgpuRunner"/> for any ILGPU accelerator (the CPU accelerator in tests).
/// </summary>
public static class GpuQuantizer
{
    // ------------------------------------------------------------------ kernel selection

    static readonly MethodInfo MxLastDef = Def(nameof(QuantKernels.MxLast)), MxFirstDef = Def(nameof(QuantKernels.MxFirst)),
        NvLastDef = Def(nameof(QuantKernels.NvLast)), NvFirstDef = Def(nameof(QuantKernels.NvFirst)),
        NvTileDef = Def(nameof(QuantKernels.NvTile16)), AmaxDef = Def(nameof(QuantKernels.AbsMaxBits)),
        AmaxHadLastDef = Def(nameof(QuantKernels.AbsMaxBitsHadamardLast)), AmaxHadFirstDef = Def(nameof(QuantKernels.AbsMaxBitsHadamardFirst)),
        DualDef = Def(nameof(QuantKernels.MxDualAxis)), NvDualDef = Def(nameof(QuantKernels.NvDualAxis));

    static MethodInfo Def(string name) => typeof(QuantKernels).GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;

    static (Type io, Type elem) Io(bool bf16) => bf16 ? (typeof(Bf16Io), typeof(ushort)) : (typeof(F32Io), typeof(float));

    static Type RoundType(Rounding r) => r switch
    {
        Rounding.Stochastic => typeof(RoundStochastic),
        Rounding.EmaGuided => typeof(RoundEmaGuided),
        _ => typeof(RoundNearest),
    };

    static Type MxRuleType(QuantSpec spec) => spec.Format == QuantFormat.MXFP8 ? typeof(Mxfp8)
        : spec.ScaleRule == ScaleRule.Ocp ? typeof(Mxfp4Ocp) : typeof(Mxfp4TetraJet);

    static Type HadType(bool hadamard) => hadamard ? typeof(WithHadamard) : typeof(NoHadamard);

    /// <summary>The kernel instantiation that quantizes with <paramref name="spec"/> along <paramref name="axis"/>.</summary>
    public static MethodInfo KernelFor(QuantSpec spec, BlockAxis axis, bool bf16, bool hadamard)
    {
        var (io, elem) = Io(bf16);
        var round = RoundType(spec.Rounding);
        return spec.Format switch
        {
            QuantFormat.MXFP4 or QuantFormat.MXFP8 => (axis == BlockAxis.Last ? MxLastDef : MxFirstDef)
                .MakeGenericMethod(io, elem, MxRuleType(spec), round, HadType(hadamard)),
            QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor when !spec.Tile16 => (axis == BlockAxis.Last ? NvLastDef : NvFirstDef)
                .MakeGenericMethod(io, elem, spec.Format == QuantFormat.NVFP4 ? typeof(NvOuter128) : typeof(NvOuterTensor), round, HadType(hadamard)),
            QuantFormat.NVFP4Tensor => NvTileDef.MakeGenericMethod(io, elem, round),
            _ => throw new ArgumentException($"no kernel quantizes {spec}"),
        };
    }

    /// <summary>Every kernel instantiation the quantizer can launch (for the PTX compile test and warm-up).</summary>
    public static IEnumerable<MethodInfo> AllKernels()
    {
        var specs = new List<QuantSpec>();
        foreach (Rounding r in Enum.GetValues<Rounding>())
        {
            specs.Add(new(QuantFormat.MXFP4, r));
            specs.Add(new(QuantFormat.MXFP4, r, ScaleRule.Ocp));
            specs.Add(new(QuantFormat.MXFP8, r));
            specs.Add(new(QuantFormat.NVFP4, r));
            specs.Add(new(QuantFormat.NVFP4Tensor, r));
            specs.Add(new(QuantFormat.NVFP4Tensor, r, Tile16: true));
        }
        foreach (bool bf16 in new[] { false, true })
        {
            foreach (var s in specs)
                foreach (var axis in new[] { BlockAxis.Last, BlockAxis.First })
                    foreach (bool had in s.Tile16 ? new[] { false } : new[] { false, true })
                    {
                        if (s.Tile16 && axis == BlockAxis.First) continue;
                        yield return KernelFor(s, axis, bf16, had);
                    }
            var (io, elem) = Io(bf16);
            yield return AmaxDef.MakeGenericMethod(io, elem);
            yield return AmaxHadLastDef.MakeGenericMethod(io, elem);
            yield return AmaxHadFirstDef.MakeGenericMethod(io, elem);
            foreach (Rounding r in new[] { Rounding.Nearest, Rounding.Stochastic })
            {
                yield return DualDef.MakeGenericMethod(io, elem, typeof(Mxfp4TetraJet), RoundType(r));
                yield return NvDualDef.MakeGenericMethod(io, elem, RoundType(r), typeof(NoHadamard));
                yield return NvDualDef.MakeGenericMethod(io, elem, RoundType(r), typeof(WithHadamard));
            }
        }
    }

    // ------------------------------------------------------------------ launching

    /// <summary>
    /// Quantizes on <paramref name="runner"/>: <paramref name="y"/> = Q(RHT?(x)). Views are the runner's; <paramref name="ema"/>
    /// is read only by EMA-guided rounding, <paramref name="scratch"/> (one uint) only by per-tensor NVFP4.
    /// </summary>
    public static void Launch(IKernelRunner runner, object x, object y, object ema, object scratch, int rows, int cols, BlockAxis axis,
        QuantSpec spec, bool bf16, ulong seed = 0, ulong stream = 0, bool padBlockAxis = false, bool hadamard = false, uint? hadamardSigns = null)
    {
        ReferenceQuantizer.CheckShape(rows, cols, axis, spec, padBlockAxis);
        int len = axis == BlockAxis.Last ? cols : rows;
        if (hadamard && len % Hadamard.Size != 0)
            throw new ArgumentException($"the Hadamard transform needs the block axis to be a multiple of 16, got {len}");
        if (hadamard && spec.Tile16) throw new ArgumentException("16x16 tiles are not combined with the Hadamard transform");
        if (spec.Format == QuantFormat.None) throw new ArgumentException("QuantFormat.None needs no kernel: copy the tensor");
        if ((long)rows * cols == 0) return;
        uint signs = hadamard ? hadamardSigns ?? Philox.HadamardSigns(seed, stream) : 0u;
        var (io, elem) = Io(bf16);
        if (spec.Format == QuantFormat.NVFP4Tensor)
        {
            runner.ZeroFirst(scratch);
            if (!hadamard)
            {
                long n = (long)rows * cols;
                runner.Launch(AmaxDef.MakeGenericMethod(io, elem), Math.Min(n, 1L << 20), x, scratch, n);
            }
            else if (axis == BlockAxis.Last)
                runner.Launch(AmaxHadLastDef.MakeGenericMethod(io, elem), (long)rows * ((cols + 127) / 128) * 32, x, scratch, rows, cols, signs);
            else
                runner.Launch(AmaxHadFirstDef.MakeGenericMethod(io, elem), (long)cols * ((rows + 15) / 16), x, scratch, rows, cols, signs);
        }
        var kernel = KernelFor(spec, axis, bf16, hadamard);
        switch (spec.Format)
        {
            case QuantFormat.MXFP4 or QuantFormat.MXFP8:
                runner.Launch(kernel, Threads(axis, rows, cols, 32), x, y, ema, rows, cols, seed, stream, signs);
                break;
            case QuantFormat.NVFP4Tensor when spec.Tile16:
                runner.Launch(kernel, (long)(rows / 16) * cols, x, y, ema, scratch, rows, cols, seed, stream);
                break;
            default:
                runner.Launch(kernel, Threads(axis, rows, cols, spec.Format == QuantFormat.NVFP4 ? 128 : 16), x, y, ema, scratch, rows, cols, seed, stream, signs);
                break;
        }
    }

    /// <summary>Threads of a layout: a warp per 128 positions along the last axis, a thread per (column, run) along the first.</summary>
    static long Threads(BlockAxis axis, int rows, int cols, int firstAxisRun) => axis == BlockAxis.Last
        ? (long)rows * ((cols + 127) / 128) * 32
        : (long)cols * ((rows + firstAxisRun - 1) / firstAxisRun);

    /// <summary>
    /// The fused backward quantizer of dY [T, N]: <paramref name="y3"/> = Q(dY) along N with stream3 and <paramref name="y5"/> = Q(dY)
    /// along T (zero-padded) with stream5, from one launch that reads dY from memory once. Formats: MXFP4 (TetraJet rule;
    /// TetraJet's Q3/Q5) and NVFP4 double block, optionally with the RHT (TetraJet-v2's Q3/Q5). N must be a multiple
    /// of the format's features block; with the RHT, T a multiple of 16.
    /// </summary>
    public static void LaunchDual(IKernelRunner runner, object x, object y3, object y5, object ema, int rows, int cols, QuantSpec spec,
        bool bf16, ulong seed, ulong stream3, ulong stream5, bool hadamard = false)
    {
        if (spec.Rounding == Rounding.EmaGuided) throw new ArgumentException("dY is never EMA-guided");
        bool mx = spec.Format == QuantFormat.MXFP4 && spec.ScaleRule == ScaleRule.TetraJet;
        if (!mx && spec.Format != QuantFormat.NVFP4) throw new ArgumentException($"the fused dY quantizer supports MXFP4 and NVFP4, not {spec}");
        if (mx && hadamard) throw new ArgumentException("the fused MXFP4 dY quantizer has no RHT");
        ReferenceQuantizer.CheckShape(rows, cols, BlockAxis.Last, spec, false, "dY");
        if (hadamard && rows % Hadamard.Size != 0) throw new ArgumentException($"dY: the RHT along T needs T a multiple of 16, got {rows}");
        if ((long)rows * cols == 0) return;
        var (io, elem) = Io(bf16);
        if (mx)
            runner.Launch(DualDef.MakeGenericMethod(io, elem, typeof(Mxfp4TetraJet), RoundType(spec.Rounding)), (long)cols * ((rows + 31) / 32),
                x, y3, y5, ema, rows, cols, seed, stream3, stream5);
        else
        {
            if (runner.GroupSize % 128 != 0) throw new InvalidOperationException($"the fused NVFP4 kernel needs groups of a multiple of 128 threads, the runner has {runner.GroupSize}");
            uint s3 = hadamard ? Philox.HadamardSigns(seed, stream3) : 0u, s5 = hadamard ? Philox.HadamardSigns(seed, stream5) : 0u;
            runner.Launch(NvDualDef.MakeGenericMethod(io, elem, RoundType(spec.Rounding), HadType(hadamard)), (long)cols * ((rows + 127) / 128),
                x, y3, y5, ema, rows, cols, seed, stream3, stream5, s3, s5);
        }
    }

    // ------------------------------------------------------------------ span API on an ILGPU accelerator

    /// <summary>
    /// <see cref="ReferenceQuantizer.Quantize"/> on an ILGPU accelerator (buffers copied in and out): the test and
    /// CPU-accelerator entry point. With <paramref name="hadamard"/>, RHT first.
    /// </summary>
    public static void Quantize(Accelerator accelerator, ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false, bool hadamard = false)
        => QuantizeOn<float>(accelerator, x, y, rows, cols, axis, spec, false, seed, stream, ema, padBlockAxis, hadamard);

    /// <summary>As <see cref="Quantize(Accelerator, ReadOnlySpan{float}, Span{float}, int, int, BlockAxis, QuantSpec, ulong, ulong, ReadOnlySpan{float}, bool, bool)"/> on bfloat16 bit patterns.</summary>
    public static void QuantizeBf16(Accelerator accelerator, ReadOnlySpan<ushort> x, Span<ushort> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false, bool hadamard = false)
        => QuantizeOn<ushort>(accelerator, x, y, rows, cols, axis, spec, true, seed, stream, ema, padBlockAxis, hadamard);

    static void QuantizeOn<T>(Accelerator acc, ReadOnlySpan<T> x, Span<T> y, int rows, int cols, BlockAxis axis, QuantSpec spec, bool bf16,
        ulong seed, ulong stream, ReadOnlySpan<float> ema, bool pad, bool hadamard) where T : unmanaged
    {
        int n = checked(rows * cols);
        if (spec.Rounding == Rounding.EmaGuided && ema.Length < n) throw new ArgumentException("EMA-guided rounding needs an EMA tensor of the same shape");
        using var xb = acc.Allocate1D<T>(Math.Max(1, n));
        using var yb = acc.Allocate1D<T>(Math.Max(1, n));
        using var eb = acc.Allocate1D<float>(Math.Max(1, spec.Rounding == Rounding.EmaGuided ? n : 1));
        using var sb = acc.Allocate1D<uint>(1);
        ArrayView<T> xv = xb.View, yv = yb.View;
        ArrayView<float> ev = eb.View;
        ArrayView<uint> sv = sb.View;
        xv.SubView(0, n).CopyFromCPU(x[..n]);
        if (spec.Rounding == Rounding.EmaGuided) ev.SubView(0, n).CopyFromCPU(ema[..n]);
        Launch(new IlgpuRunner(acc), xv, yv, ev, sv, rows, cols, axis, spec, bf16, seed, stream, pad, hadamard);
        acc.Synchronize();
        yv.SubView(0, n).CopyToCPU(y[..n]);
    }

    /// <summary>The fused dY quantizer on an ILGPU accelerator (float32).</summary>
    public static void QuantizeDual(Accelerator acc, ReadOnlySpan<float> x, Span<float> y3, Span<float> y5, int rows, int cols, QuantSpec spec,
        ulong seed, ulong stream3, ulong stream5, bool hadamard = false)
    {
        int n = checked(rows * cols);
        using var xb = acc.Allocate1D<float>(Math.Max(1, n));
        using var y3b = acc.Allocate1D<float>(Math.Max(1, n));
        using var y5b = acc.Allocate1D<float>(Math.Max(1, n));
        using var eb = acc.Allocate1D<float>(1);
        ArrayView<float> xv = xb.View, y3v = y3b.View, y5v = y5b.View, ev = eb.View;
        xv.SubView(0, n).CopyFromCPU(x[..n]);
        LaunchDual(new IlgpuRunner(acc), xv, y3v, y5v, ev, rows, cols, spec, false, seed, stream3, stream5, hadamard);
        acc.Synchronize();
        y3v.SubView(0, n).CopyToCPU(y3[..n]);
        y5v.SubView(0, n).CopyToCPU(y5[..n]);
    }

    // ------------------------------------------------------------------ pointer API (CUDA device memory)

    /// <summary>
    /// <see cref="ReferenceQuantizer.Quantize"/> on CUDA device memory of device <paramref name="device"/>, queued on the
    /// default stream of its primary context (torch's): <paramref name="x"/> and <paramref name="y"/> hold rows×cols
    /// float32 or (<paramref name="bf16"/>) bfloat16 elements; <paramref name="ema"/> rows×cols float32 (EMA-guided only);
    /// <paramref name="scratch"/> 4 bytes (per-tensor NVFP4 only). Returns without waiting.
    /// </summary>
    public static void Quantize(int device, IntPtr x, IntPtr y, int rows, int cols, BlockAxis axis, QuantSpec spec, bool bf16,
        ulong seed = 0, ulong stream = 0, IntPtr ema = default, IntPtr scratch = default, bool padBlockAxis = false, bool hadamard = false)
    {
        long n = (long)rows * cols;
        if (spec.Rounding == Rounding.EmaGuided && ema == IntPtr.Zero) throw new ArgumentException("EMA-guided rounding needs the EMA buffer");
        if (spec.Format == QuantFormat.NVFP4Tensor && scratch == IntPtr.Zero) throw new ArgumentException("per-tensor NVFP4 needs a 4-byte scratch buffer");
        Launch(CudaRunner.ForDevice(device), new DeviceView(x, n), new DeviceView(y, n), new DeviceView(ema, ema == IntPtr.Zero ? 0 : n),
            new DeviceView(scratch, scratch == IntPtr.Zero ? 0 : 1), rows, cols, axis, spec, bf16, seed, stream, padBlockAxis, hadamard);
    }

    // ------------------------------------------------------------------ tensor API (torch CUDA tensors, in place)

    /// <summary>A CUDA tensor's memory as a kernel view (contiguous float32, bfloat16 or int32 expected).</summary>
    public static DeviceView View(Tensor t) => new(TensorMemory.DataPointer(t), t.numel());

    /// <summary>
    /// Q(RHT?(x)) of a CUDA float32 or bfloat16 tensor, same shape, dtype and device; all work is queued on torch's
    /// default stream in torch's context, nothing is copied to the host. Semantics as <see cref="Quantizer.Quantize"/>.
    /// </summary>
    public static Tensor Quantize(Tensor x, QuantSpec spec, BlockAxis axis = BlockAxis.Last, ulong seed = 0, ulong stream = 0,
        Tensor? ema = null, bool padBlockAxis = false, bool hadamard = false, uint? hadamardSigns = null)
    {
        if (x.device_type != DeviceType.CUDA) throw new ArgumentException($"expected a CUDA tensor, got one on {x.device}");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {x.dtype}");
        using var scope = NewDisposeScope();
        long cols = x.shape[^1];
        long rows = cols == 0 ? 0 : x.numel() / cols;
        if (rows > int.MaxValue || cols > int.MaxValue) throw new ArgumentException($"tensor of [{rows}, {cols}] is too large");
        var x2 = x.reshape(rows, cols).contiguous();
        if (spec.Format == QuantFormat.None) return x2.clone().reshape(x.shape).MoveToOuterDisposeScope();
        var y = empty_like(x2);
        Tensor? e2 = null;
        if (spec.Rounding == Rounding.EmaGuided)
        {
            if (ema is null) throw new ArgumentException("EMA-guided rounding needs the EMA tensor");
            e2 = ema.reshape(rows, cols).to(ScalarType.Float32, x.device).contiguous();
        }
        var scratch = empty(new long[] { 1 }, ScalarType.Int32, x.device);
        var runner = CudaRunner.ForDevice(x.device.index < 0 ? 0 : x.device.index);
        Launch(runner, View(x2), View(y), e2 is null ? new DeviceView(TensorMemory.DataPointer(y), 0) : View(e2), View(scratch),
            (int)rows, (int)cols, axis, spec, x.dtype == ScalarType.BFloat16, seed, stream, padBlockAxis, hadamard, hadamardSigns);
        return y.reshape(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>The fused dY quantizer on a CUDA tensor [..., N]: (Q3 along N, Q5 along the flattened token axis). MXFP4 by default.</summary>
    public static (Tensor Q3, Tensor Q5) QuantizeDual(Tensor dy, Rounding rounding, ulong seed, ulong stream3, ulong stream5) =>
        QuantizeDual(dy, new QuantSpec(QuantFormat.MXFP4, rounding), seed, stream3, stream5);

    /// <summary>The fused dY quantizer on a CUDA tensor [..., N] for MXFP4 or NVFP4 (optionally with the RHT).</summary>
    public static (Tensor Q3, Tensor Q5) QuantizeDual(Tensor dy, QuantSpec spec, ulong seed, ulong stream3, ulong stream5, bool hadamard = false)
    {
        if (dy.device_type != DeviceType.CUDA) throw new ArgumentException($"expected a CUDA tensor, got one on {dy.device}");
        if (dy.dtype != ScalarType.Float32 && dy.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {dy.dtype}");
        using var scope = NewDisposeScope();
        long cols = dy.shape[^1], rows = cols == 0 ? 0 : dy.numel() / cols;
        var x2 = dy.reshape(rows, cols).contiguous();
        var y3 = empty_like(x2);
        var y5 = empty_like(x2);
        LaunchDual(CudaRunner.ForDevice(dy.device.index < 0 ? 0 : dy.device.index), View(x2), View(y3), View(y5),
            new DeviceView(TensorMemory.DataPointer(y3), 0), (int)rows, (int)cols, spec, dy.dtype == ScalarType.BFloat16, seed, stream3, stream5, hadamard);
        return (y3.reshape(dy.shape).MoveToOuterDisposeScope(), y5.reshape(dy.shape).MoveToOuterDisposeScope());
    }
}
