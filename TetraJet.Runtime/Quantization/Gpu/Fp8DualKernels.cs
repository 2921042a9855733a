using ILGPU;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// dY [rows, cols] read once into both FP8 operands of backward (<see cref="Fp8Operand"/>): Q3 along N (the rows kernel's
/// output: codes3 [rows, cols], scales3 [⌈cols/128⌉][rows], flags3 of rows, side3 [rows, cols]) and Q5 along T,
/// transposed (the first-axis kernel's output: codes5 [cols, paddedRows], scales5 [paddedRows/128][cols], flags5 of
/// columns, side5 [cols, paddedRows]), each with its own SR stream. Signature: <see cref="Fp8DualKernel{T}"/>.
/// </summary>
/// <remarks>
/// A group per [128 × 128] region, launched over <see cref="KernelGeometry.Fp8DualThreads"/>: the load gives each
/// 128-column row to 16 lanes, which produce Q3 from registers (a Q3 group is exactly those 16 lanes), and keeps the first
/// 32 columns as the shared-memory tile of <see cref="Fp8ColumnKernels"/> for Q5; the other three quarters are then
/// loaded again (from L2: the group read them a moment before) for theirs. cols is a multiple of 32.
/// </remarks>
public static class Fp8DualKernels
{
    public static void Mx<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<byte> codes3, ArrayView<float> scales3, ArrayView<int> flags3, ArrayView<T> side3,
        ArrayView<byte> codes5, ArrayView<float> scales5, ArrayView<int> flags5, ArrayView<T> side5, int rows, int cols, int paddedRows,
        ulong seed, ulong stream3, ulong stream5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        var tile = Fp8ColumnKernels.Tile.Allocate();
        ColumnTiles.Origin(128, cols, KernelGeometry.WideTileCols, out int r0, out int c0);
        int t = Group.IdxX, lane = t & 31, cc = (t & 15) * 8, rr = t >> 4;
        int n = ColumnTiles.Run(cols, c0 + cc);
        bool vector = ColumnTiles.IsVector(cols, n);
        for (int p = 0; p < 128; p += 16)
        {
            int ra = r0 + p + rr, rb = ra + 8;
            int na = ra < rows ? n : 0, nb = rb < rows ? n : 0;
            long ia = (long)ra * cols + c0 + cc, ib = (long)rb * cols + c0 + cc;
            Vec8 a = Vec8Io.Load<TIo, T>(x, ia, na, vector && na == 8);
            Vec8 b = Vec8Io.Load<TIo, T>(x, ib, nb, vector && nb == 8);
            if (cc < Fp8ColumnKernels.Cols)
            {
                Vec8Io.StoreFloats(tile.Values, (p + rr) * Fp8ColumnKernels.Cols + cc, a);
                Vec8Io.StoreFloats(tile.Values, (p + 8 + rr) * Fp8ColumnKernels.Cols + cc, b);
            }
            bool brokenA = Fp8RowKernels.Group<TIo, T, TRule, TRound, NoStore>(a, lane, ra, c0 + cc, ia, na, vector && na == 8, default, codes3, scales3,
                default, default, rows, seed, stream3);
            Fp8RowKernels.Rare<TIo, T, TRule, TRound>(brokenA, ra, lane, x, default, flags3, side3, cols, seed, stream3);
            bool brokenB = Fp8RowKernels.Group<TIo, T, TRule, TRound, NoStore>(b, lane, rb, c0 + cc, ib, nb, vector && nb == 8, default, codes3, scales3,
                default, default, rows, seed, stream3);
            Fp8RowKernels.Rare<TIo, T, TRule, TRound>(brokenB, rb, lane, x, default, flags3, side3, cols, seed, stream3);
        }
        Group.Barrier();
        Fp8ColumnKernels.Process<TIo, T, Fp8FromTensor, TRule, TRound>(tile, x, default, default, default, codes5, scales5, flags5, side5,
            rows, cols, paddedRows, r0, c0, seed, stream5);
        for (int q = c0 + Fp8ColumnKernels.Cols; q < c0 + KernelGeometry.WideTileCols && q < cols; q += Fp8ColumnKernels.Cols)
        {
            Group.Barrier();
            ColumnTiles.LoadPlain<TIo, T>(x, tile.Values, rows, cols, r0, q, 128, Fp8ColumnKernels.Cols);
            Group.Barrier();
            Fp8ColumnKernels.Process<TIo, T, Fp8FromTensor, TRule, TRound>(tile, x, default, default, default, codes5, scales5, flags5, side5,
                rows, cols, paddedRows, r0, q, seed, stream5);
        }
    }
}
