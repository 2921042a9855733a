using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The per-tensor amax pass of per-tensor NVFP4 (the NVIDIA recipe), run before its quantizer: |x| bits maxed
/// atomically into result[0] (zeroed by the caller), of x itself or of its RHT along either axis. Signature:
/// <see cref="AmaxKernel{T}"/>; geometry: <see cref="KernelGeometry"/> (AmaxThreads, AmaxRowThreads, AmaxColumnThreads).
/// </summary>
public static class AmaxKernels
{
    /// <summary>Per-tensor amax as |x| bits: a grid-stride pass over runs of 8 elements (16-byte loads), the tail element by element.</summary>
    public static void Plain<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long n = (long)rows * cols, runs = n >> 3;
        long stride = (long)Grid.DimX * Group.DimX, t = ThreadIndex32();
        uint m = 0;
        for (long k = t; k < runs; k += stride) m = Max(m, default(TIo).Load8(x, k << 3).AbsMax());
        long tail = (runs << 3) + t;
        if (tail < n) m = Max(m, AbsBits(default(TIo).Load(x, tail)));
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0 && m != 0) Atomic.Max(ref result[0], m);
    }

    /// <summary>Per-tensor amax of the RHT-transformed tensor along the last axis (NVIDIA recipe with RHT): the row kernels' layout.</summary>
    public static void HadamardRows<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        var at = RowLane.Current(rows, cols);
        if (!at.InRows) return;
        Vec8 v = Vec8Io.Load<TIo, T>(x, at.Index, at.Count, at.Vector);
        v = Hadamard2Lanes(v, (at.Lane & 1) != 0, signs);
        uint m = WarpMax(v.AbsMax(), 32);
        if (at.Lane == 0 && m != 0) Atomic.Max(ref result[0], m);
    }

    /// <summary>
    /// Per-tensor amax of the RHT-transformed tensor along the first axis: a thread per (column, 16 rows), the 16 values in
    /// registers (consecutive threads, consecutive columns: each row's loads are coalesced); rows past the end are zeros.
    /// </summary>
    public static void HadamardColumns<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int t = ThreadIndex32(), blk = t / cols, c = t - blk * cols;
        uint m = 0;
        if (blk < (rows + 15) >> 4)
        {
            int r0 = blk * 16;
            Vec8 lo = Column(x, rows, cols, r0, c), hi = Column(x, rows, cols, r0 + 8, c);
            Hadamard16Unscaled(ref lo, ref hi, signs);
            m = Quarter(Max(lo.AbsMax(), hi.AbsMax()));
        }
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0 && m != 0) Atomic.Max(ref result[0], m);

        static Vec8 Column(ArrayView<T> x, int rows, int cols, int r, int c)
        {
            var io = default(TIo);
            long i = (long)r * cols + c;
            Vec8 v = default;
            if (r < rows) v.V0 = io.Load(x, i);
            if (r + 1 < rows) v.V1 = io.Load(x, i + cols);
            if (r + 2 < rows) v.V2 = io.Load(x, i + 2L * cols);
            if (r + 3 < rows) v.V3 = io.Load(x, i + 3L * cols);
            if (r + 4 < rows) v.V4 = io.Load(x, i + 4L * cols);
            if (r + 5 < rows) v.V5 = io.Load(x, i + 5L * cols);
            if (r + 6 < rows) v.V6 = io.Load(x, i + 6L * cols);
            if (r + 7 < rows) v.V7 = io.Load(x, i + 7L * cols);
            return v;
        }
    }
}
