using ILGPU;
using ILGPU.Runtime;
using TetraJet.Plans;
using TetraJet.Quantization.Reference;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The GPU kernels on any ILGPU accelerator, with host arrays copied in and out: how the tests and checks run the very
/// kernels CUDA runs on ILGPU's CPU accelerator, against <see cref="ReferenceQuantizer"/>. Same contract and bits as the
/// reference (plus the optional RHT of <see cref="Quantizer.Quantize"/>). Each call takes quantizer handles, so a
/// generated plan's kernel entry points run here as they are.
/// </summary>
public static partial class GpuQuantizer
{
    /// <summary>A buffer as the kernels' parameter type (ILGPU launches match parameter types exactly).</summary>
    static ArrayView<T> V<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer) where T : unmanaged => buffer.View;

    /// <summary><see cref="ReferenceQuantizer.Quantize"/> (after the RHT, when asked) with the library's kernels, float32.</summary>
    public static void Quantize(Accelerator accelerator, ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false, bool hadamard = false)
        => Run<float>(accelerator, x, y, rows, cols, axis, spec, false, seed, stream, ema, padBlockAxis, hadamard);

    /// <summary>As <see cref="Quantize(Accelerator, ReadOnlySpan{float}, Span{float}, int, int, BlockAxis, QuantSpec, ulong, ulong, ReadOnlySpan{float}, bool, bool)"/> on bfloat16 bit patterns.</summary>
    public static void QuantizeBf16(Accelerator accelerator, ReadOnlySpan<ushort> x, Span<ushort> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false, bool hadamard = false)
        => Run<ushort>(accelerator, x, y, rows, cols, axis, spec, true, seed, stream, ema, padBlockAxis, hadamard);

    static void Run<T>(Accelerator acc, ReadOnlySpan<T> x, Span<T> y, int rows, int cols, BlockAxis axis, QuantSpec spec, bool bf16,
        ulong seed, ulong stream, ReadOnlySpan<float> ema, bool pad, bool hadamard) where T : unmanaged
    {
        if (spec.Format == QuantFormat.None) { ReferenceQuantizer.CheckShape(rows, cols, axis, spec, pad); x[..checked(rows * cols)].CopyTo(y); return; }
        uint signs = hadamard ? Randomness.Philox.HadamardSigns(seed, stream) : 0u;
        if (axis == BlockAxis.Last) Run(acc, RowQuantizer.Of(spec, hadamard), null, x, y, rows, cols, bf16, seed, stream, signs, ema, pad);
        else Run(acc, null, ColumnQuantizer.Of(spec, hadamard), x, y, rows, cols, bf16, seed, stream, signs, ema, pad);
    }

    /// <summary>A features-axis quantizer handle's kernels (a generated plan's, or the library's) on an accelerator, float32.</summary>
    public static float[] Run(Accelerator acc, RowQuantizer q, float[] x, int rows, int cols, ulong seed, ulong stream, uint signs, float[]? ema = null)
    {
        if (q.Stores) throw new ArgumentException($"{q} writes storage: run it with Store");
        var y = new float[x.Length];
        Run<float>(acc, q, null, x, y, rows, cols, false, seed, stream, signs, ema, false);
        return y;
    }

    /// <summary>A first-axis quantizer handle's kernels on an accelerator, float32 (rows need not be a block multiple).</summary>
    public static float[] Run(Accelerator acc, ColumnQuantizer q, float[] x, int rows, int cols, ulong seed, ulong stream, uint signs, float[]? ema = null)
    {
        var y = new float[x.Length];
        Run<float>(acc, null, q, x, y, rows, cols, false, seed, stream, signs, ema, true);
        return y;
    }

    static void Run<T>(Accelerator acc, RowQuantizer? rowQ, ColumnQuantizer? colQ, ReadOnlySpan<T> x, Span<T> y, int rows, int cols, bool bf16,
        ulong seed, ulong stream, uint signs, ReadOnlySpan<float> ema, bool pad) where T : unmanaged
    {
        var axis = rowQ is null ? BlockAxis.First : BlockAxis.Last;
        var spec = rowQ?.Spec ?? colQ!.Spec;
        bool hadamard = rowQ?.Hadamard ?? colQ!.Hadamard;
        ReferenceQuantizer.CheckShape(rows, cols, axis, spec, pad);
        if (hadamard && (axis == BlockAxis.Last ? cols : rows) % Hadamard.Size != 0)
            throw new ArgumentException($"the Hadamard transform needs the block axis to be a multiple of 16, got {(axis == BlockAxis.Last ? cols : rows)}");
        int n = checked(rows * cols);
        if (spec.Rounding == Rounding.EmaGuided && ema.Length < n) throw new ArgumentException("EMA-guided rounding needs an EMA tensor of the same shape");
        var runner = new IlgpuRunner(acc);
        using var xb = acc.Allocate1D<T>(Math.Max(1, n));
        using var yb = acc.Allocate1D<T>(Math.Max(1, n));
        using var eb = acc.Allocate1D<float>(Math.Max(1, spec.Rounding == Rounding.EmaGuided ? n : 1));
        using var sb = acc.Allocate1D<uint>(1);
        using var none = acc.Allocate1D<byte>(1);
        using var noneF = acc.Allocate1D<float>(1);
        ArrayView<T> xv = xb.View, yv = yb.View;
        ArrayView<float> ev = eb.View;
        ArrayView<uint> sv = sb.View;
        xv.SubView(0, n).CopyFromCPU(x[..n]);
        if (spec.Rounding == Rounding.EmaGuided) ev.SubView(0, n).CopyFromCPU(ema[..n]);
        if (n > 0)
        {
            if ((rowQ is not null ? rowQ.GpuAmax : colQ!.GpuAmax) is { } amax)
            {
                sv.SubView(0, 1).MemSetToZero();
                runner.Launch(amax.For(bf16), KernelGeometry.Amax(axis, hadamard, rows, cols), xv, sv, rows, cols, signs);
            }
            if (rowQ is not null)
            {
                runner.Launch(rowQ.Gpu.For(bf16), KernelGeometry.Rows(spec, rows, cols), xv, yv, ev, sv, V(none), V(none), V(noneF), rows, cols, seed, stream, signs);
            }
            else
                runner.Launch(colQ!.Gpu.For(bf16), KernelGeometry.Columns(spec, rows, cols), xv, yv, ev, sv, rows, cols, seed, stream, signs);
        }
        acc.Synchronize();
        yv.SubView(0, n).CopyToCPU(y[..n]);
    }

    /// <summary>
    /// The fused dY kernel (float32): Q3 along the last axis (stream3, RHT signs of stream3) and Q5 along the first, padded
    /// (stream5, RHT signs of stream5), from one launch. N a multiple of the format's features block; with the RHT, T a
    /// multiple of 16.
    /// </summary>
    public static void QuantizeDual(Accelerator acc, ReadOnlySpan<float> x, Span<float> y3, Span<float> y5, int rows, int cols, QuantSpec spec,
        ulong seed, ulong stream3, ulong stream5, bool hadamard = false)
        => QuantizeDual(acc, DualQuantizer.Of(spec, hadamard), x, y3, y5, rows, cols, seed, stream3, stream5,
            hadamard ? Randomness.Philox.HadamardSigns(seed, stream3) : 0u, hadamard ? Randomness.Philox.HadamardSigns(seed, stream5) : 0u);

    /// <summary>A fused dY quantizer handle's kernel on an accelerator (float32), with explicit RHT signs per output.</summary>
    public static void QuantizeDual(Accelerator acc, DualQuantizer q, ReadOnlySpan<float> x, Span<float> y3, Span<float> y5, int rows, int cols,
        ulong seed, ulong stream3, ulong stream5, uint s3, uint s5)
    {
        var spec = q.Spec;
        bool hadamard = q.Hadamard;
        ReferenceQuantizer.CheckShape(rows, cols, BlockAxis.Last, spec, false, "dY");
        if (hadamard && rows % Hadamard.Size != 0) throw new ArgumentException($"dY: the RHT along T needs T a multiple of 16, got {rows}");
        int n = checked(rows * cols);
        using var xb = acc.Allocate1D<float>(Math.Max(1, n));
        using var y3b = acc.Allocate1D<float>(Math.Max(1, n));
        using var y5b = acc.Allocate1D<float>(Math.Max(1, n));
        ArrayView<float> xv = xb.View, y3v = y3b.View, y5v = y5b.View;
        xv.SubView(0, n).CopyFromCPU(x[..n]);
        var runner = new IlgpuRunner(acc);
        if (n > 0) runner.Launch(q.Gpu.For(false), KernelGeometry.Dual(spec, rows, cols), xv, y3v, y5v, rows, cols, seed, stream3, stream5, s3, s5);
        acc.Synchronize();
        y3v.SubView(0, n).CopyToCPU(y3[..n]);
        y5v.SubView(0, n).CopyToCPU(y5[..n]);
    }

    /// <summary>
    /// A storing row kernel then the unpack kernel (float32): the storage form of Q(x) along the last axis (codes, scales,
    /// outer scales) and its values read back.
    /// </summary>
    public static (byte[] Codes, byte[] Scales, float[] Outer, float[] Quantized, float[] Unpacked) Store(Accelerator acc, float[] x, int rows, int cols,
        QuantSpec spec, ulong seed = 0, ulong stream = 0, float[]? ema = null)
        => Store(acc, RowQuantizer.Of(spec, stores: true), x, rows, cols, seed, stream, ema);

    /// <summary>As <see cref="Store(Accelerator, float[], int, int, QuantSpec, ulong, ulong, float[])"/> with a storing quantizer handle's own kernel.</summary>
    public static (byte[] Codes, byte[] Scales, float[] Outer, float[] Quantized, float[] Unpacked) Store(Accelerator acc, RowQuantizer q, float[] x,
        int rows, int cols, ulong seed = 0, ulong stream = 0, float[]? ema = null)
    {
        if (!q.Stores) throw new ArgumentException($"{q} does not write storage");
        var spec = q.Spec;
        int n = checked(rows * cols), nScales = n / spec.Block, nOuter = spec.Format == QuantFormat.NVFP4 ? n / 128 : 0;
        using var xb = acc.Allocate1D(x);
        using var yb = acc.Allocate1D<float>(n);
        using var eb = acc.Allocate1D(ema ?? new float[1]);
        using var ab = acc.Allocate1D<uint>(1);
        using var cb = acc.Allocate1D<byte>(PackedTensor.CodeBytes(spec, n));
        using var sb = acc.Allocate1D<byte>(Math.Max(1, nScales));
        using var ob = acc.Allocate1D<float>(Math.Max(1, nOuter));
        using var ub = acc.Allocate1D<float>(n);
        var runner = new IlgpuRunner(acc);
        runner.Launch(q.Gpu.For(false), KernelGeometry.Rows(spec, rows, cols), V(xb), V(yb), V(eb), V(ab), V(cb), V(sb), V(ob),
            rows, cols, seed, stream, 0u);
        runner.Launch(LibraryKernels.Unpack(spec).For(false), KernelGeometry.UnpackThreads(n), V(cb), V(sb), V(ob), V(ub), (long)n);
        acc.Synchronize();
        return (cb.GetAsArray1D(), sb.GetAsArray1D()[..nScales], ob.GetAsArray1D()[..nOuter], yb.GetAsArray1D(), ub.GetAsArray1D());
    }

    /// <summary>
    /// y [rows, cols] = Q(RHT?(unpack(source))) along the first axis from storage in one pass (float32); source rows past
    /// <paramref name="sourceRows"/> are zeros.
    /// </summary>
    public static float[] QuantizeFromStored(Accelerator acc, byte[] codes, byte[] scales, float[] outer, int rows, int cols, int sourceRows,
        QuantSpec source, QuantSpec target, ulong seed, ulong stream, uint? hadamardSigns)
        => QuantizeFromStored(acc, StoredColumnQuantizer.Of(source, target, hadamardSigns is not null), codes, scales, outer, rows, cols, sourceRows,
            seed, stream, hadamardSigns ?? 0u);

    /// <summary>A storage-reading quantizer handle's kernel on an accelerator (float32).</summary>
    public static float[] QuantizeFromStored(Accelerator acc, StoredColumnQuantizer q, byte[] codes, byte[] scales, float[] outer, int rows, int cols,
        int sourceRows, ulong seed, ulong stream, uint signs)
    {
        if (q.Hadamard && rows % Hadamard.Size != 0) throw new ArgumentException($"the RHT along the first axis needs rows a multiple of 16, got {rows}");
        using var cb = acc.Allocate1D(codes);
        using var sb = acc.Allocate1D(scales);
        using var ob = acc.Allocate1D(outer.Length == 0 ? new float[1] : outer);
        using var yb = acc.Allocate1D<float>((long)rows * cols);
        var runner = new IlgpuRunner(acc);
        if ((long)rows * cols > 0)
            runner.Launch(q.Gpu.For(false), KernelGeometry.Columns(q.Spec, rows, cols), V(cb), V(sb), V(ob), V(yb), rows, cols, sourceRows,
                seed, stream, signs);
        acc.Synchronize();
        return yb.GetAsArray1D();
    }
}
