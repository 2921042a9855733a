using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The backward quantizers of dY [T, N] from one read of it: Q3 along N (blocks along the last axis) and Q5 along T
/// (first axis, zero-padded), each with its own SR stream and, where the configuration has them, its own RHT signs
/// (those of its GEMM pair). Signature: <see cref="DualKernel{T}"/>. Each group reads its tile once with 16-byte loads:
/// Q3 comes from the registers of that read (its blocks lie along the rows the threads hold), Q5 from the tile in shared
/// memory (<see cref="ColumnTiles"/>). Launched over <see cref="KernelGeometry.DualThreads"/>. Reference: two
/// ReferenceQuantizer calls.
/// </summary>
public static class DualKernels
{
    /// <summary>
    /// Q3 = MX(dY) along N (stream3) and Q5 = MX(dY) along T (zero-padded, stream5); no RHT (the signs are unused). A
    /// [32 × 64] tile per group: a Q3 block is 4 lanes of the load, a Q5 block one tile column. Needs N a multiple of 32.
    /// </summary>
    public static void Mx<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5,
        int rows, int cols, PhiloxKey seed, ulong stream3, ulong stream5, uint signs3, uint signs5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        var tile = SharedMemory.Allocate<float>(32 * ColumnTiles.Cols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var inverse = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var offset = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var scale = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        ColumnTiles.Origin(32, cols, ColumnTiles.Cols, out int r0, out int c0);
        int t = Group.IdxX, cc = (t & 7) * 8, rr = t >> 3;
        int n = ColumnTiles.Run(cols, c0 + cc);
        bool vector = ColumnTiles.IsVector(cols, n);
        // Both of the thread's rows are loaded before either is quantized: two 16-byte requests in flight.
        int ra = r0 + rr, rb = ra + 16;
        long ia = (long)ra * cols + c0 + cc, ib = ia + 16L * cols;
        // Q3's uniforms are computed while both loads are in flight.
        long last = (long)(rows - 1) * cols + c0 + cc;
        Vec8Io.LoadPairWithUniforms<TIo, T, TRound>(x, ia, ib, last, n, vector, seed, stream3, out var a, out var b);
        Vec8Io.StoreFloats(tile, rr * ColumnTiles.Cols + cc, a.V);
        Vec8Io.StoreFloats(tile, (16 + rr) * ColumnTiles.Cols + cc, b.V);
        MxRow<TIo, T, TRule, TRound>(a.V, a.U, y3, rows, ra, ia, n, vector);
        MxRow<TIo, T, TRule, TRound>(b.V, b.U, y3, rows, rb, ib, n, vector);
        Group.Barrier();
        bool finite = ColumnTiles.MxColumns<TRule, NoHadamard>(tile, partial, inverse, offset, scale, 0u);
        ColumnTiles.MxRows<TIo, T, TRule, TRound>(tile, inverse, offset, scale, finite, y5, default, rows, cols, r0, c0, 32, seed, stream5, wholeRuns: true);
    }

    /// <summary>Q3 of 8 elements of a row (an MX block is 4 lanes): every lane reaches the shuffle, rows past the end write nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MxRow<TIo, T, TRule, TRound>(Vec8 v, Vec8 u, ArrayView<T> y3, int rows, int r, long i, int n, bool vector)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        uint m = WarpMax(v.AbsMax(), 4);
        if (r >= rows || n == 0) return;
        int s = BlockMath.MxExponent<TRule>(m);
        var g = BlockMath.MxGrid<TRule, TRound>(v, m, s, u, default);
        BlockMath.StoreMx<TIo, T, TRule>(y3, i, n, vector, BlockMath.MxValues(g, s), m < NonFiniteBits);
    }

    /// <summary>
    /// Q3 of one 128-column row held by 8 lanes, an inner block of 16 each (as <see cref="RowKernels.Nv"/>): the RHT in
    /// registers, the block scale once, the outer amax over the 8 lanes. Every lane reaches the shuffle; rows past the
    /// end write nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NvRow<TIo, T, TRound, THad>(Vec8 lo, Vec8 hi, Vec8 uLo, Vec8 uHi, ArrayView<T> y3, int rows, int r, long i, uint signs3)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        // As RowKernels.Nv: with the RHT, lo and hi hold its sums before the 1/4.
        if (default(THad).Enabled) Hadamard16Unscaled(ref lo, ref hi, signs3);
        uint amaxV = Max(lo.AbsMax(), hi.AbsMax()), inner = default(THad).Enabled ? Quarter(amaxV) : amaxV;
        uint outer = WarpMax(inner, 8);
        if (r >= rows) return;
        bool bad = outer >= NonFiniteBits;
        float so = BlockMath.NvOuter(outer), scale = BlockMath.NvInner(outer, so, inner) * so;
        BlockMath.NvGridPair<TRound, THad>(lo, hi, scale, bad, amaxV, uLo, uHi, default, default, out var gLo, out var gHi);
        default(TIo).Store8(y3, i, BlockMath.NvValues(gLo, scale, bad));
        default(TIo).Store8(y3, i + 8, BlockMath.NvValues(gHi, scale, bad));
    }

    /// <summary>
    /// TetraJet-v2's dY quantizers in one launch: Q3 = NVFP4(RHT(dY)) along N (stream3, signs3) and Q5 = NVFP4(RHT(dY))
    /// along T (zero-padded, stream5, signs5), both with the 16-in-128 double block. A group per [128 × 128] region: the
    /// load gives each 128-column row to 8 lanes, which quantize Q3 from registers, and keeps the left 32 columns as a
    /// tile for Q5; the other three quarters are then loaded again (from L2: the group read them a moment before) for
    /// their Q5. Shared memory stays at one [128 × 32] FP32 tile. Needs N a multiple of 128.
    /// </summary>
    public static void Nv<TIo, T, TRound, THad>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5,
        int rows, int cols, PhiloxKey seed, ulong stream3, ulong stream5, uint signs3, uint signs5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var tile = SharedMemory.Allocate<float>(128 * ColumnTiles.NvCols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var scales = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        var reciprocals = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        ColumnTiles.Origin(128, cols, KernelGeometry.WideTileCols, out int r0, out int c0);
        // 16 rows a pass, 8 lanes a 128-column row, 16 consecutive elements (an inner block) a lane.
        int t = Group.IdxX, cc = (t & 7) * 16, rr = t >> 3;
        // N is a multiple of 128 (the callers check it): every run is 8 whole elements, one aligned vector, and the
        // element-by-element paths for ragged runs are left out of the kernel's code.
        const int n = 8;
        const bool vector = true;
        // The last valid start of a lane's second run: rows past the end load zeros from a valid address.
        long last = (long)(rows - 1) * cols + c0 + cc + 8;
        for (int p = 0; p < 128; p += 16)
        {
            int r = r0 + p + rr;
            long i = (long)r * cols + c0 + cc;
            Vec8Io.LoadPairWithUniforms<TIo, T, TRound>(x, i, i + 8, last, n, vector, seed, stream3, out var lo, out var hi);
            if (cc < ColumnTiles.NvCols)
            {
                Vec8Io.StoreFloats(tile, (p + rr) * ColumnTiles.NvCols + cc, lo.V);
                Vec8Io.StoreFloats(tile, (p + rr) * ColumnTiles.NvCols + cc + 8, hi.V);
            }
            NvRow<TIo, T, TRound, THad>(lo.V, hi.V, lo.U, hi.U, y3, rows, r, i, signs3);
        }
        // The four 32-column quarters in a loop, not written out: the kernel's code stays small enough for the
        // instruction cache (written out, "no instruction" was its largest warp stall).
        for (int part = c0; part < c0 + KernelGeometry.WideTileCols && part < cols; part += ColumnTiles.NvCols)
        {
            if (part != c0)
            {
                Group.Barrier();
                ColumnTiles.LoadPlain<TIo, T>(x, tile, rows, cols, r0, part, 128, ColumnTiles.NvCols);
            }
            Group.Barrier();
            bool shared = ColumnTiles.NvColumns<NvOuter128, THad>(tile, partial, scales, reciprocals, default, signs5);
            ColumnTiles.NvRows<TIo, T, TRound>(tile, scales, reciprocals, shared, y5, default, rows, cols, r0, part, seed, stream5, wholeRuns: true);
        }
    }
}
