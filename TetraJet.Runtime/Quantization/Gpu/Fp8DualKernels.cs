using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// dY [rows, cols] read once into both FP8 operands of backward (<see cref="Fp8Operand"/>): Q3 along N (the rows kernel's
/// output: codes3 [rows, cols], scales3 [⌈cols/128⌉][rows], flags3 of rows, side3 [rows, cols]) and Q5 along T,
/// transposed (the first-axis kernel's output: codes5 [cols, paddedRows], scales5 [paddedRows/128][cols], flags5 of
/// columns, side5 [cols, paddedRows]), each with its own SR stream. Signature: <see cref="Fp8DualKernel{T}"/>.
/// </summary>
/// <remarks>
/// A group per [128 × 128] region, launched over <see cref="KernelGeometry.Fp8DualThreads"/>, taken as four [128 × 32]
/// quarter tiles, each loaded once into shared memory. From each quarter the group makes Q5 exactly as
/// <see cref="Fp8ColumnKernels"/> does, and the amax of Q3's block of every row (a quarter row is one MX block of 32).
/// Once the four quarters are in, each row's 128-group has its scale and span, and a second pass over the region
/// (16-byte reads, from L2: the group read it moments before) rounds Q3 and writes its FP8 codes, 8 bytes per thread,
/// whole rows per half-warp. Keeping no Q3 values between the passes holds shared memory to ≈ 25 KB a group, eight
/// groups an SM. cols is a multiple of 32.
/// </remarks>
public static class Fp8DualKernels
{
    const int Quarter = Fp8ColumnKernels.Cols;

    public static void Mx<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<byte> codes3, ArrayView<float> scales3, ArrayView<int> flags3, ArrayView<T> side3,
        ArrayView<byte> codes5, ArrayView<float> scales5, ArrayView<int> flags5, ArrayView<T> side5, int rows, int cols, int paddedRows,
        PhiloxKey seed, ulong stream3, ulong stream5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        var tile = Fp8ColumnKernels.Tile.Allocate();
        var amax3 = SharedMemory.Allocate<uint>(128 * 4);     // Q3 block amax bits: [row][quarter]
        var max3 = SharedMemory.Allocate<int>(128);           // Q3 group s_max per row
        var broken3 = SharedMemory.Allocate<int>(128);
        ColumnTiles.Origin(128, cols, KernelGeometry.WideTileCols, out int r0, out int c0);
        int t = Group.IdxX, lane = t & 31, cc = (t & 3) * 8, rr = t >> 2;
        for (int q = 0; q < 4; q++)
        {
            int cq = c0 + q * Quarter;
            Group.Barrier();                                   // the previous quarter's readers are done with the tile
            ColumnTiles.LoadPlain<TIo, T>(x, tile.Values, rows, cols, r0, cq, 128, Quarter);
            Group.Barrier();
            // Q3's block amax: thread (row 32p + rr, columns cc … cc + 7); a row's 32 columns are 4 neighbouring lanes.
            // Rows and columns past the end were loaded as zeros.
            for (int p = 0; p < 4; p++)
            {
                int r = 32 * p + rr;
                uint m = WarpMax(Vec8Io.LoadFloats(tile.Values, r * Quarter + cc).AbsMax(), 4);
                if ((t & 3) == 0) amax3[r * 4 + q] = m;
            }
            if (cq < cols)                                     // group-uniform
                Fp8ColumnKernels.Process<TIo, T, Fp8FromTensor, TRule, TRound>(tile, x, default, default, default, codes5, scales5, flags5, side5,
                    rows, cols, paddedRows, r0, cq, seed, stream5);
        }
        Group.Barrier();

        // Q3 groups: thread t is row t of the region.
        {
            int sMax = Fp8Operand.NoneMax, sMin = Fp8Operand.NoneMin;
            for (int q = 0; q < 4; q++)
            {
                uint m = amax3[t * 4 + q];
                int s = BlockMath.MxExponent<TRule>(m);
                sMax = Max(sMax, Fp8Operand.LiveMax(m, s));
                sMin = Min(sMin, Fp8Operand.LiveMin(m, s));
            }
            bool inside = r0 + t < rows, broken = inside && Fp8Operand.Broken(sMax, sMin);
            max3[t] = sMax;
            if (inside) scales3[(c0 >> 7) * rows + r0 + t] = Fp8Operand.GroupScale(sMax);
            broken3[t] = broken && Fp8Operand.Claim(flags3, r0 + t) ? 1 : 0;
        }
        Group.Barrier();
        // Q3 codes: thread (row, 8 columns), 16 threads a row, so a half-warp reads a row's 256 bytes and writes its 128.
        var words3 = codes3.Cast<ulong>();
        for (int k = t; k < 128 * 16; k += KernelGeometry.GroupSize)
        {
            int r = k >> 4, j = k & 15, c = c0 + 8 * j;
            if (r0 + r >= rows || c >= cols) continue;
            long i = (long)(r0 + r) * cols + c;
            var loaded = Vec8Io.LoadWithUniforms<TIo, T, TRound>(x, i, 8, true, seed, stream3);
            uint m = amax3[r * 4 + (j >> 2)];
            int s = BlockMath.MxExponent<TRule>(m);
            var g = BlockMath.MxGrid<TRule, TRound>(loaded.V, m, s, loaded.U, default);
            words3[i >> 3] = Fp8Operand.Codes(g, m, s, max3[r]);
        }
        // Rare: each row of the region this tile claimed re-quantized whole into side3, by one warp (warp w takes rows w, w + 4, …).
        if (!Group.BarrierOr(broken3[t] != 0)) return;
        for (int r = t >> 5; r < 128; r += 4)
            if (broken3[r] != 0)
                Fp8RowKernels.SideRowOf<TIo, T, TRule, TRound>(x, default, side3, r0 + r, cols, lane, seed, stream3);
    }
}
