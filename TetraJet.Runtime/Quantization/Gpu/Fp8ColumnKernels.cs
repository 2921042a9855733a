using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>Where a first-axis FP8 kernel reads its values: a plain tensor or an MXFP4 storage form along the last axis (a compile-time constant).</summary>
public interface IFp8Source { bool Stored { get; } }

public readonly struct Fp8FromTensor : IFp8Source { public bool Stored => false; }

public readonly struct Fp8FromStorage : IFp8Source { public bool Stored => true; }

/// <summary>
/// MXFP4 quantizers along the first axis (Q4 from Ŵ's storage, Q6 from X̂'s storage, Q5 from dY) that write the FP8 GEMM
/// operand TRANSPOSED (<see cref="Fp8Operand"/>): the first axis becomes the contiguous reduction axis, so codes8 is
/// [cols, paddedRows], scales8 is group-major [paddedRows/128][cols], the flags list columns of the input (= rows of the
/// output) and the side copy is [cols, paddedRows]. Rows at or past <c>rows</c> up to <c>paddedRows</c> (a multiple of
/// 128) are zeros. Signatures: <see cref="Fp8ColumnKernel{T}"/>, <see cref="Fp8StoredColumnKernel{T}"/>.
/// </summary>
/// <remarks>
/// A group per [128 × 32] tile, launched over <see cref="KernelGeometry.Fp8ColumnThreads"/>: coalesced 16-byte reads
/// into shared memory (4 threads per row); warp b reduces MX block b (rows 32b … 32b + 31) of every column once, down
/// the column; warp 0 then turns the column's 4 blocks into its group scale, span flag and per-block scalings; each
/// thread quantizes 8 consecutive elements of a row (one Philox block per 4) and drops their codes into a transposed
/// byte tile (row stride 132 bytes, so a warp's byte stores fall in distinct words); finally each warp writes whole
/// 128-byte output rows with 4-byte stores. The tile's 128 rows are one group of each of its 32 output rows, so scale
/// and span come from the tile alone. A broken column (rare) is re-quantized whole, down all rows, into the side copy, by
/// the one tile that claims it.
/// Shared memory ≈ 22 KB a group.
/// </remarks>
public static class Fp8ColumnKernels
{
    /// <summary>Columns of a tile (its output rows).</summary>
    public const int Cols = 32;
    /// <summary>Bytes per row of the transposed code tile: 128 codes and 4 of padding (33 words).</summary>
    const int CodeStride = 132;

    /// <summary>Shared memory of one tile kernel, allocated by the entry point (allocations belong to the kernel).</summary>
    internal readonly struct Tile(ArrayView<float> values, ArrayView<uint> amax, ArrayView<int> exponent, ArrayView<float> inverse, ArrayView<float> factor,
        ArrayView<int> broken, ArrayView<uint> codes)
    {
        /// <summary>The tile, [128 × 32] FP32.</summary>
        public readonly ArrayView<float> Values = values;
        /// <summary>Per (block, column), [4 × 32]: amax bits and exponent (column phase); 2^-s and the code factor (<see cref="Factor"/>).</summary>
        public readonly ArrayView<uint> Amax = amax;
        public readonly ArrayView<int> Exponent = exponent;
        public readonly ArrayView<float> Inverse = inverse, Factor = factor;
        public readonly ArrayView<int> Broken = broken;
        /// <summary>The transposed codes, [32 × 132] bytes as words.</summary>
        public readonly ArrayView<uint> Codes = codes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Tile Allocate() => new(SharedMemory.Allocate<float>(128 * Cols), SharedMemory.Allocate<uint>(4 * Cols), SharedMemory.Allocate<int>(4 * Cols),
            SharedMemory.Allocate<float>(4 * Cols), SharedMemory.Allocate<float>(4 * Cols), SharedMemory.Allocate<int>(Cols), SharedMemory.Allocate<uint>(Cols * CodeStride / 4));
    }

    /// <summary>
    /// The code factor of a block: 2^(s − s_max + 6) (0 below the bound), NaN for a non-finite block (its codes are NaN),
    /// −1 for a zero block (its codes are +0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Factor(uint amax, int s, int sMax) =>
        amax >= NonFiniteBits ? float.NaN : amax == 0 ? -1f : Fp8Operand.Factor(s - sMax + 6);

    /// <summary>One element's grid value times its block's code factor (see <see cref="Factor(uint, int, int)"/>): the E4M3 value of its code in a live block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Scaled<TRule, TRound>(float v, float inverse, float factor, float u, float e) where TRule : struct, IMxRule where TRound : struct, IRoundingMode =>
        BlockMath.MxOne<TRule, TRound>(v * inverse, u, e * inverse) * factor;

    /// <summary>The code of one element from the low byte of its packed code (<see cref="Fp8Operand.Pack4"/>): +0 in a zero block, NaN in a non-finite one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Code(uint packed, float factor)
    {
        uint live = factor < 0f ? 0u : packed;
        return float.IsNaN(factor) ? Fp8Operand.NaNCode : live;
    }

    /// <summary>
    /// Everything after the load of a [128 × 32] tile whose first row is r0 (a multiple of 128) and first column c0: block
    /// and group reductions, scales, flags, codes, and the rare side copy. Starts after a barrier that follows the load.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Process<TIo, T, TSrc, TRule, TRound>(Tile tile, ArrayView<T> x, ArrayView<byte> sourceCodes, ArrayView<byte> sourceScales,
        ArrayView<float> ema, ArrayView<byte> codes8, ArrayView<float> scales8, ArrayView<int> flags, ArrayView<T> side,
        int rows, int cols, int paddedRows, int r0, int c0, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IFp8Source where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        int t = Group.IdxX, c = t & (Cols - 1), b = t >> 5;
        // Blocks: warp b reduces rows 32b … 32b + 31 of column c (consecutive lanes, consecutive columns: no bank conflicts).
        uint m = 0;
        for (int k = 32 * b * Cols + c; k < (32 * b + 32) * Cols; k += Cols) m = Max(m, AbsBits(tile.Values[k]));
        tile.Amax[t] = m;
        tile.Exponent[t] = BlockMath.MxExponent<TRule>(m);
        Group.Barrier();
        if (b == 0)
        {
            int sMax = Fp8Operand.NoneMax, sMin = Fp8Operand.NoneMin;
            for (int k = c; k < 4 * Cols; k += Cols)
            {
                sMax = Max(sMax, Fp8Operand.LiveMax(tile.Amax[k], tile.Exponent[k]));
                sMin = Min(sMin, Fp8Operand.LiveMin(tile.Amax[k], tile.Exponent[k]));
            }
            for (int k = c; k < 4 * Cols; k += Cols)
            {
                tile.Inverse[k] = Bits.Pow2(-tile.Exponent[k]);
                tile.Factor[k] = Factor(tile.Amax[k], tile.Exponent[k], sMax);
            }
            bool inside = c0 + c < cols, broken = inside && Fp8Operand.Broken(sMax, sMin);
            if (inside) scales8[(r0 >> 7) * cols + c0 + c] = Fp8Operand.GroupScale(sMax);
            // The side copy is written by the tile that claims the column, once for all its broken groups.
            tile.Broken[c] = broken && Fp8Operand.Claim(flags, c0 + c) ? 1 : 0;
        }
        Group.Barrier();

        // Rows: thread (row 32p + rr, columns cc … cc + 7) for p = 0 … 3, i.e. block p; codes go down 8 rows of the transposed tile.
        int cc = (t & 3) * 8, rr = t >> 2;
        int n = ColumnTiles.Run(cols, c0 + cc);
        bool vector = ColumnTiles.IsVector(cols, n), blocks = (cols & 3) == 0;
        var bytes = tile.Codes.Cast<byte>();
        if (n > 0)
            for (int p = 0; p < 4; p++)
            {
                int r = 32 * p + rr;
                uint k0 = 0, k1 = 0, k2 = 0, k3 = 0, k4 = 0, k5 = 0, k6 = 0, k7 = 0;
                if (r0 + r < rows)
                {
                    long i = (long)(r0 + r) * cols + c0 + cc;
                    Vec8 v = Vec8Io.LoadFloats(tile.Values, r * Cols + cc);
                    Vec8 inv = Vec8Io.LoadFloats(tile.Inverse, p * Cols + cc), f = Vec8Io.LoadFloats(tile.Factor, p * Cols + cc);
                    Vec8 u = Uniforms<TRound>(seed, stream, i, n, blocks), e = Vec8Io.Ema<TRound>(ema, i, n, vector);
                    uint lo4 = Fp8Operand.Pack4(Scaled<TRule, TRound>(v.V0, inv.V0, f.V0, u.V0, e.V0), Scaled<TRule, TRound>(v.V1, inv.V1, f.V1, u.V1, e.V1),
                        Scaled<TRule, TRound>(v.V2, inv.V2, f.V2, u.V2, e.V2), Scaled<TRule, TRound>(v.V3, inv.V3, f.V3, u.V3, e.V3));
                    uint hi4 = Fp8Operand.Pack4(Scaled<TRule, TRound>(v.V4, inv.V4, f.V4, u.V4, e.V4), Scaled<TRule, TRound>(v.V5, inv.V5, f.V5, u.V5, e.V5),
                        Scaled<TRule, TRound>(v.V6, inv.V6, f.V6, u.V6, e.V6), Scaled<TRule, TRound>(v.V7, inv.V7, f.V7, u.V7, e.V7));
                    k0 = Code(lo4, f.V0); k1 = Code(lo4 >> 8, f.V1); k2 = Code(lo4 >> 16, f.V2); k3 = Code(lo4 >> 24, f.V3);
                    k4 = Code(hi4, f.V4); k5 = Code(hi4 >> 8, f.V5); k6 = Code(hi4 >> 16, f.V6); k7 = Code(hi4 >> 24, f.V7);
                }
                int at = cc * CodeStride + r;
                bytes[at] = (byte)k0; bytes[at + CodeStride] = (byte)k1; bytes[at + 2 * CodeStride] = (byte)k2; bytes[at + 3 * CodeStride] = (byte)k3;
                bytes[at + 4 * CodeStride] = (byte)k4; bytes[at + 5 * CodeStride] = (byte)k5; bytes[at + 6 * CodeStride] = (byte)k6; bytes[at + 7 * CodeStride] = (byte)k7;
            }
        Group.Barrier();

        // Out: warp w writes output rows w, w + 4, …: 128 bytes each, a 4-byte word per lane.
        int lane = t & 31;
        var words = codes8.Cast<uint>();
        for (int j = b; j < Cols && c0 + j < cols; j += 4)
            words[((long)(c0 + j) * paddedRows + r0 >> 2) + lane] = tile.Codes[j * (CodeStride / 4) + lane];

        // Rare: a column this tile claimed is re-quantized whole into the side copy (group-uniform: the claims are in shared memory).
        if (!Group.BarrierOr(b == 0 && tile.Broken[c] != 0)) return;
        for (int j = 0; j < Cols; j++)
            if (tile.Broken[j] != 0)
                SideColumn<TIo, T, TSrc, TRule, TRound>(x, sourceCodes, sourceScales, ema, side, c0 + j, rows, cols, paddedRows, seed, stream);
    }

    /// <summary>
    /// Element (r, c) of the source: the tensor, or the MXFP4 storage decoded (an E2M1 × E8M0 value is a bfloat16
    /// value already, so the dtype it stood for holds it unrounded, as in ColumnTiles.LoadStored).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Source<TIo, T, TSrc>(ArrayView<T> x, ArrayView<byte> sourceCodes, ArrayView<byte> sourceScales, long i)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IFp8Source =>
        default(TSrc).Stored
            ? Fp4Grid.Decode((uint)(sourceCodes[i >> 1] >> (int)((i & 1) << 2))) * E8M0.Decode(sourceScales[i >> 5])
            : default(TIo).Load(x, i);

    /// <summary>
    /// Q(x) of input column <paramref name="col"/>, all padded rows, into output row col of the side copy: thread t takes
    /// rows t, t + 128, …, so a warp holds one MX block (32 consecutive rows) and reduces it by shuffles. The main
    /// path's steps, element by element, so its values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void SideColumn<TIo, T, TSrc, TRule, TRound>(ArrayView<T> x, ArrayView<byte> sourceCodes, ArrayView<byte> sourceScales, ArrayView<float> ema,
        ArrayView<T> side, int col, int rows, int cols, int paddedRows, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IFp8Source where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        for (int r = Group.IdxX; r - Group.IdxX < paddedRows; r += KernelGeometry.GroupSize)
        {
            long i = (long)r * cols + col;
            bool real = r < rows;
            float v = real ? Source<TIo, T, TSrc>(x, sourceCodes, sourceScales, i) : 0f;
            uint m = WarpMax(AbsBits(v), 32);
            float q = 0f;
            if (m >= NonFiniteBits) q = float.NaN;
            else if (m != 0)
            {
                int s = BlockMath.MxExponent<TRule>(m);
                float inv = Bits.Pow2(-s);
                float ticks = default(TRound).Mode == Rounding.Stochastic && real ? Tick(seed, stream, i) : 0f;
                float e = default(TRound).Mode == Rounding.EmaGuided && real ? ema[i] : 0f;
                q = BlockMath.MxOne<TRule, TRound>(v * inv, ticks, e * inv) * Bits.Pow2(s);
            }
            default(TIo).Store(side, (long)col * paddedRows + r, q);
        }
    }

    /// <summary>From a plain tensor x [rows, cols] (Q5 from dY). Launched over <see cref="KernelGeometry.Fp8ColumnThreads"/>.</summary>
    public static void Mx<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<float> ema, ArrayView<byte> codes8, ArrayView<float> scales8,
        ArrayView<int> flags, ArrayView<T> side, int rows, int cols, int paddedRows, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        var tile = Tile.Allocate();
        ColumnTiles.Origin(128, cols, Cols, out int r0, out int c0);
        ColumnTiles.LoadPlain<TIo, T>(x, tile.Values, rows, cols, r0, c0, 128, Cols);
        Group.Barrier();
        Process<TIo, T, Fp8FromTensor, TRule, TRound>(tile, x, default, default, ema, codes8, scales8, flags, side, rows, cols, paddedRows, r0, c0, seed, stream);
    }

    /// <summary>
    /// From an MXFP4 storage form along the last axis of a [rows, cols] operand (Q4 from Ŵ, Q6 from X̂): dequantized as the
    /// dtype it stood for, then quantized along the first axis. Launched over <see cref="KernelGeometry.Fp8ColumnThreads"/>.
    /// </summary>
    public static void MxStored<TIo, T, TRule, TRound>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<byte> codes8, ArrayView<float> scales8,
        ArrayView<int> flags, ArrayView<T> side, int rows, int cols, int paddedRows, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        var tile = Tile.Allocate();
        ColumnTiles.Origin(128, cols, Cols, out int r0, out int c0);
        ColumnTiles.LoadStored<TIo, T, StoredMx>(codes, scales, default, tile.Values, rows, cols, r0, c0, 128, Cols);
        Group.Barrier();
        Process<TIo, T, Fp8FromStorage, TRule, TRound>(tile, default, codes, scales, default, codes8, scales8, flags, side, rows, cols, paddedRows, r0, c0, seed, stream);
    }
}
