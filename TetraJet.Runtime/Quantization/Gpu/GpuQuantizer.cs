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
public static class GpuQuantizer
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
        ReferenceQuantizer.CheckShape(rows, cols, axis, spec, pad);
        if (hadamard && (axis == BlockAxis.Last ? cols : rows) % Hadamard.Size != 0)
            throw new ArgumentException($"the Hadamard transform needs the block axis to be a multiple of 16, got {(axis == BlockAxis.Last ? cols : rows)}");
        int n = checked(rows * cols);
        if (spec.Format == QuantFormat.None) { x[..n].CopyTo(y); return; }
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
            uint signs = hadamard ? Randomness.Philox.HadamardSigns(seed, stream) : 0u;
            if (LibraryKernels.Amax(spec, axis, hadamard) is { } amax)
            {
                sv.SubView(0, 1).MemSetToZero();
                long at = !hadamard ? Math.Min(n, 1L << 20) : axis == BlockAxis.Last ? (long)rows * ((cols + 127) / 128) * 32 : (long)cols * ((rows + 15) / 16);
                runner.Launch(amax.For(bf16), at, xv, sv, rows, cols, signs);
            }
            if (axis == BlockAxis.Last)
            {
                var q = RowQuantizer.Of(spec, hadamard);
                long threads = spec.Tile16 ? (long)(rows / 16) * cols : (long)rows * ((cols + 127) / 128) * 32;
                runner.Launch(q.Gpu.For(bf16), threads, xv, yv, ev, sv, V(none), V(none), V(noneF), rows, cols, seed, stream, signs);
            }
            else
            {
                var q = ColumnQuantizer.Of(spec, hadamard);
                runner.Launch(q.Gpu.For(bf16), (long)cols * ((rows + q.Run - 1) / q.Run), xv, yv, ev, sv, rows, cols, seed, stream, signs);
            }
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
    {
        ReferenceQuantizer.CheckShape(rows, cols, BlockAxis.Last, spec, false, "dY");
        if (hadamard && rows % Hadamard.Size != 0) throw new ArgumentException($"dY: the RHT along T needs T a multiple of 16, got {rows}");
        var q = DualQuantizer.Of(spec, hadamard);
        int n = checked(rows * cols);
        using var xb = acc.Allocate1D<float>(Math.Max(1, n));
        using var y3b = acc.Allocate1D<float>(Math.Max(1, n));
        using var y5b = acc.Allocate1D<float>(Math.Max(1, n));
        ArrayView<float> xv = xb.View, y3v = y3b.View, y5v = y5b.View;
        xv.SubView(0, n).CopyFromCPU(x[..n]);
        var runner = new IlgpuRunner(acc);
        if (spec.Format == QuantFormat.NVFP4 && runner.GroupSize % 128 != 0)
            throw new InvalidOperationException($"the fused NVFP4 kernel needs groups of a multiple of 128 threads, the accelerator gives {runner.GroupSize}");
        uint s3 = hadamard ? Randomness.Philox.HadamardSigns(seed, stream3) : 0u, s5 = hadamard ? Randomness.Philox.HadamardSigns(seed, stream5) : 0u;
        if (n > 0) runner.Launch(q.Gpu.For(false), (long)cols * ((rows + q.Run - 1) / q.Run), xv, y3v, y5v, rows, cols, seed, stream3, stream5, s3, s5);
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
    {
        var q = RowQuantizer.Of(spec, stores: true);
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
        runner.Launch(q.Gpu.For(false), (long)rows * ((cols + 127) / 128) * 32, V(xb), V(yb), V(eb), V(ab), V(cb), V(sb), V(ob),
            rows, cols, seed, stream, 0u);
        if (spec.Format != QuantFormat.MXFP8)
            runner.Launch(LibraryKernels.Unpack(spec).For(false), n / 4, V(cb), V(sb), V(ob), V(ub), (long)n);
        acc.Synchronize();
        return (cb.GetAsArray1D(), sb.GetAsArray1D()[..nScales], ob.GetAsArray1D()[..nOuter], yb.GetAsArray1D(), ub.GetAsArray1D());
    }

    /// <summary>
    /// y [rows, cols] = Q(RHT?(unpack(source))) along the first axis from storage in one pass (float32); source rows past
    /// <paramref name="sourceRows"/> are zeros.
    /// </summary>
    public static float[] QuantizeFromStored(Accelerator acc, byte[] codes, byte[] scales, float[] outer, int rows, int cols, int sourceRows,
        QuantSpec source, QuantSpec target, ulong seed, ulong stream, uint? hadamardSigns)
    {
        if (hadamardSigns is not null && rows % Hadamard.Size != 0) throw new ArgumentException($"the RHT along the first axis needs rows a multiple of 16, got {rows}");
        var q = StoredColumnQuantizer.Of(source, target, hadamardSigns is not null);
        using var cb = acc.Allocate1D(codes);
        using var sb = acc.Allocate1D(scales);
        using var ob = acc.Allocate1D(outer.Length == 0 ? new float[1] : outer);
        using var yb = acc.Allocate1D<float>((long)rows * cols);
        var runner = new IlgpuRunner(acc);
        if ((long)rows * cols > 0)
            runner.Launch(q.Gpu.For(false), (long)cols * ((rows + q.Run - 1) / q.Run), V(cb), V(sb), V(ob), V(yb), rows, cols, sourceRows,
                seed, stream, hadamardSigns ?? 0u);
        acc.Synchronize();
        return yb.GetAsArray1D();
    }
}
