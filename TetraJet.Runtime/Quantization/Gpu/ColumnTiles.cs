using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The shared-memory tiles of the first-axis kernels (blocks down the rows of a row-major tensor: Q4, Q5, Q6). A group of
/// <see cref="KernelGeometry.GroupSize"/> threads owns a tile, [32 × 64] (MX) or [128 × 32] (NVFP4), held as FP32 in
/// shared memory:
/// <list type="number">
/// <item>load: each thread moves 8 consecutive elements of a row with one 16-byte access (a row's 64 or 32 columns by
/// 8 or 4 threads, two passes in flight), so reads are coalesced whatever the block axis;</item>
/// <item>columns: a thread per (column, half or quarter of the tile's rows) reduces its blocks once, down the column (consecutive
/// threads, consecutive columns: no bank conflicts), and leaves per-column block scales in shared memory;</item>
/// <item>rows: each thread quantizes 8 consecutive elements of a row with the scales of their columns, one Philox block
/// per 4 elements, and writes them with one 16-byte store.</item>
/// </list>
/// Rows past the end are zeros (the token axis' padding: no amax changes) and are not written; columns past the end
/// likewise. Where cols is not a multiple of 8 the row accesses go element by element (same bits).
/// </summary>
internal static class ColumnTiles
{
    public const int Cols = KernelGeometry.TileCols;

    /// <summary>
    /// Columns of an NVFP4 tile: [128 × 32] FP32 (16 KB, with its scales and reciprocals 18.7 KB a group), so that 11
    /// groups fit an SM's shared memory where a [128 × 64] tile let 6.
    /// </summary>
    public const int NvCols = KernelGeometry.NvTileCols;

    /// <summary>This group's tile origin: groups run along a tile row of ⌈cols/tileCols⌉ tiles, then down.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Origin(int tileRows, int cols, int tileCols, out int r0, out int c0)
    {
        int across = (cols + tileCols - 1) / tileCols, g = Grid.IdxX, down = g / across;
        r0 = down * tileRows;
        c0 = (g - down * across) * tileCols;
    }

    /// <summary>How many of the 8 columns starting at <paramref name="c"/> exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Run(int cols, int c) => Min(Max(cols - c, 0), 8);

    /// <summary>
    /// Whether a run of <paramref name="n"/> columns at a multiple of 8 is one aligned vector in every row (cols a
    /// multiple of 8 makes every row start at a multiple of 8 elements). Returned, not an out parameter: ILGPU keeps
    /// out-parameter booleans that live across a loop in local memory.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsVector(int cols, int n) => (cols & 7) == 0 && n == 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 PlainRow<TIo, T>(ArrayView<T> x, int rows, int cols, int r, int c, int n, bool vector)
        where T : unmanaged where TIo : struct, IElementIo<T> =>
        r < rows ? Vec8Io.Load<TIo, T>(x, (long)r * cols + c, n, vector) : default;

    /// <summary>
    /// Loads x[r0 …, c0 … c0 + tileCols − 1] into <paramref name="tile"/> ([tileRows × tileCols]; tileCols 32 or 64, tileRows
    /// a multiple of 2048 / tileCols): tileCols / 8 threads per row, two rows in flight per thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPlain<TIo, T>(ArrayView<T> x, ArrayView<float> tile, int rows, int cols, int r0, int c0, int tileRows, int tileCols = Cols)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int across = tileCols >> 3, step = KernelGeometry.GroupSize / across;
        int t = Group.IdxX, cc = (t & (across - 1)) * 8, rr = t / across;
        int n = Run(cols, c0 + cc);
        bool vector = IsVector(cols, n);
        for (int p = 0; p < tileRows; p += 2 * step)
        {
            // Both loads are issued before either store: two 16-byte requests in flight per thread.
            Vec8 a = PlainRow<TIo, T>(x, rows, cols, r0 + p + rr, c0 + cc, n, vector);
            Vec8 b = PlainRow<TIo, T>(x, rows, cols, r0 + p + step + rr, c0 + cc, n, vector);
            Vec8Io.StoreFloats(tile, (p + rr) * tileCols + cc, a);
            Vec8Io.StoreFloats(tile, (p + step + rr) * tileCols + cc, b);
        }
    }

    /// <summary>Element values of 8 consecutive positions from an FP4 storage form, as the dtype it stood for holds them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 StoredRow<TIo, T, TSrc>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int sourceRows, int cols, int r, int c, int n)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource
    {
        Vec8 v = default;
        if (r >= sourceRows || n == 0) return v;
        // Storage needs cols a multiple of its block (≥ 32), so a run of 8 is whole, in one code word and one scale.
        long i = (long)r * cols + c;
        uint w = codes.Cast<uint>()[i >> 3];
        float scale = default(TSrc).Nv ? E4M3.Decode(scales[i >> 4]) * outer[i >> 7] : E8M0.Decode(scales[i >> 5]);
        // The decoded values as the dtype holds them. An MXFP4 value E2M1 × 2^s needs one fraction bit and, non-zero, is
        // at least 2^-128 (s ≥ −127): in FP32 (infinite past its range, as bfloat16's rounding keeps it) a bfloat16 value
        // already, so only NVFP4's products with an FP32 outer scale take the rounding step.
        Vec8 d = Fp4Grid.Decode8(w, scale);
        return default(TSrc).Nv ? default(TIo).Round8(d) : d;
    }

    /// <summary>As <see cref="LoadPlain"/> from a last-axis FP4 storage form (one 4-byte code word per 8 elements); rows at or past <paramref name="sourceRows"/> are zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadStored<TIo, T, TSrc>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<float> tile,
        int sourceRows, int cols, int r0, int c0, int tileRows, int tileCols = Cols)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource
    {
        int across = tileCols >> 3, step = KernelGeometry.GroupSize / across;
        int t = Group.IdxX, cc = (t & (across - 1)) * 8, rr = t / across;
        int n = Run(cols, c0 + cc);
        for (int p = 0; p < tileRows; p += 2 * step)
        {
            Vec8 a = StoredRow<TIo, T, TSrc>(codes, scales, outer, sourceRows, cols, r0 + p + rr, c0 + cc, n);
            Vec8 b = StoredRow<TIo, T, TSrc>(codes, scales, outer, sourceRows, cols, r0 + p + step + rr, c0 + cc, n);
            Vec8Io.StoreFloats(tile, (p + rr) * tileCols + cc, a);
            Vec8Io.StoreFloats(tile, (p + step + rr) * tileCols + cc, b);
        }
    }

    // ---------------------------------------------------------------- one 16-row group of a column

    /// <summary>
    /// Rows [row0, row0 + 16) of tile column <paramref name="c"/>: transformed in place by the RHT when enabled (the
    /// reference's stages, Hadamard.Transform16), and their amax bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Group16<THad>(ArrayView<float> tile, int row0, int c, uint signs, int w) where THad : struct, IHadamardMode
    {
        int at = row0 * w + c;
        Vec8 lo = new()
        {
            V0 = tile[at], V1 = tile[at + w], V2 = tile[at + 2 * w], V3 = tile[at + 3 * w],
            V4 = tile[at + 4 * w], V5 = tile[at + 5 * w], V6 = tile[at + 6 * w], V7 = tile[at + 7 * w],
        };
        at += 8 * w;
        Vec8 hi = new()
        {
            V0 = tile[at], V1 = tile[at + w], V2 = tile[at + 2 * w], V3 = tile[at + 3 * w],
            V4 = tile[at + 4 * w], V5 = tile[at + 5 * w], V6 = tile[at + 6 * w], V7 = tile[at + 7 * w],
        };
        if (default(THad).Enabled)
        {
            Hadamard16(ref lo, ref hi, signs);
            StoreColumn(tile, row0 * w + c, lo, w);
            StoreColumn(tile, (row0 + 8) * w + c, hi, w);
        }
        return Max(lo.AbsMax(), hi.AbsMax());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreColumn(ArrayView<float> tile, int at, Vec8 v, int w)
    {
        tile[at] = v.V0; tile[at + w] = v.V1; tile[at + 2 * w] = v.V2; tile[at + 3 * w] = v.V3;
        tile[at + 4 * w] = v.V4; tile[at + 5 * w] = v.V5; tile[at + 6 * w] = v.V6; tile[at + 7 * w] = v.V7;
    }

    // ---------------------------------------------------------------- MX: a 32-row tile, one block per column

    /// <summary>
    /// Column phase of an MX tile of 32 rows (one block per column): thread (column c, half h) reduces rows
    /// [16h, 16h + 16) (one RHT group), the halves meet in <paramref name="partial"/>, and the column's scaling is left
    /// in <paramref name="inverse"/> (2^-s; 0 marks a zero block), <paramref name="offset"/> (<see cref="MxValue{TRule, TRound}"/>)
    /// and <paramref name="scale"/> (2^s; NaN marks a non-finite block). Returns whether every block of the tile is
    /// finite. Ends with a barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MxColumns<TRule, THad>(ArrayView<float> tile, ArrayView<uint> partial, ArrayView<float> inverse, ArrayView<float> offset,
        ArrayView<float> scale, uint signs)
        where TRule : struct, IMxRule where THad : struct, IHadamardMode
    {
        int t = Group.IdxX, c = t & (Cols - 1), h = t >> 6;
        partial[t] = Group16<THad>(tile, 16 * h, c, signs, Cols);
        Group.Barrier();
        bool nonFinite = false;
        if (h == 0)
        {
            uint m = Max(partial[c], partial[Cols + c]);
            int s = BlockMath.MxExponent<TRule>(m);
            nonFinite = m >= NonFiniteBits;
            inverse[c] = m == 0 ? 0f : nonFinite ? 1f : Bits.Pow2(-s);
            offset[c] = m == 0 ? 0f : -0f;
            scale[c] = nonFinite ? float.NaN : Bits.Pow2(s);
        }
        return !Group.BarrierOr(nonFinite);
    }

    /// <summary>
    /// One element of an MX block from its column's scaling (see <see cref="MxColumns"/>): +0 in a zero block, NaN in a
    /// non-finite one. <paramref name="offset"/> is the column's −0, or +0 for a zero block: v·inverse + offset is v·inverse
    /// itself in a live block (adding −0 changes no value, −0 included) and +0 in a zero block (inverse 0: ±0 + +0), so
    /// one FMA scales the element and clears a zero block's signs, where a compare and a select per element did.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MxValue<TRule, TRound>(float v, float inverse, float offset, float scale, float u, float e) where TRule : struct, IMxRule where TRound : struct, IRoundingMode =>
        BlockMath.MxOne<TRule, TRound>(Fma(v, inverse, offset), u, e * inverse) * scale;

    /// <summary>a·b + c rounded once: <c>fma.rn</c> on CUDA; elsewhere the product then the sum, the same value wherever c is a signed zero (the only use).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Fma(float a, float b, float c) => ILGPU.Runtime.Cuda.CudaAsm.IsSupported ? default(PtxFma).Fma(a, b, c) : a * b + c;

    /// <summary>
    /// Row phase of an MX tile: y[r0 + r, c0 + …] = Q for the tile's rows below <paramref name="rows"/>, 8 elements a thread,
    /// 16 rows a pass. <paramref name="finite"/>: <see cref="MxColumns"/>'s result (values stored without a rounding step
    /// where every block is finite). <paramref name="wholeRuns"/> as in <see cref="NvRows"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MxRows<TIo, T, TRule, TRound>(ArrayView<float> tile, ArrayView<float> inverse, ArrayView<float> offset, ArrayView<float> scale,
        bool finite, ArrayView<T> y,
        ArrayView<float> ema, int rows, int cols, int r0, int c0, int tileRows, PhiloxKey seed, ulong stream, bool wholeRuns = false)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        int t = Group.IdxX, cc = (t & 7) * 8, rr = t >> 3;
        int n = Run(cols, c0 + cc);
        if (n == 0) return;
        bool vector = wholeRuns || IsVector(cols, n);
        bool blocks = wholeRuns || (cols & 3) == 0;
        Vec8 inv = Vec8Io.LoadFloats(inverse, cc), off = Vec8Io.LoadFloats(offset, cc), sc = Vec8Io.LoadFloats(scale, cc);
        for (int r = rr; r < tileRows && r0 + r < rows; r += 16)
        {
            long i = (long)(r0 + r) * cols + c0 + cc;
            Vec8 v = Vec8Io.LoadFloats(tile, r * Cols + cc);
            Vec8 u = Uniforms<TRound>(seed, stream, i, n, blocks), e = Vec8Io.Ema<TRound>(ema, i, n, vector);
            Vec8 q = new()
            {
                V0 = MxValue<TRule, TRound>(v.V0, inv.V0, off.V0, sc.V0, u.V0, e.V0), V1 = MxValue<TRule, TRound>(v.V1, inv.V1, off.V1, sc.V1, u.V1, e.V1),
                V2 = MxValue<TRule, TRound>(v.V2, inv.V2, off.V2, sc.V2, u.V2, e.V2), V3 = MxValue<TRule, TRound>(v.V3, inv.V3, off.V3, sc.V3, u.V3, e.V3),
                V4 = MxValue<TRule, TRound>(v.V4, inv.V4, off.V4, sc.V4, u.V4, e.V4), V5 = MxValue<TRule, TRound>(v.V5, inv.V5, off.V5, sc.V5, u.V5, e.V5),
                V6 = MxValue<TRule, TRound>(v.V6, inv.V6, off.V6, sc.V6, u.V6, e.V6), V7 = MxValue<TRule, TRound>(v.V7, inv.V7, off.V7, sc.V7, u.V7, e.V7),
            };
            BlockMath.StoreMx<TIo, T, TRule>(y, i, n, vector, q, finite);
        }
    }

    // ---------------------------------------------------------------- NVFP4: a 128-row tile, 8 inner blocks per column

    /// <summary>
    /// Column phase of an NVFP4 tile of 128 rows × 32 columns: thread (column c, quarter q) transforms (RHT) and reduces
    /// its 2 inner blocks of 16, the quarters meet in <paramref name="partial"/> for the outer amax (or the per-tensor amax
    /// is read), and the block scales FP32(s_i·s_o) (NaN for a non-finite outer block) are left in <paramref name="scales"/>
    /// [8 × 32], their reciprocals RN(1/scale) in <paramref name="reciprocals"/>. Returns whether every block of the
    /// tile allows the quotients by the reciprocal (<see cref="SharedDivisor.BlockFits"/>; the rows still check their
    /// elements for tiny ones). Ends with a barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NvColumns<TOuter, THad>(ArrayView<float> tile, ArrayView<uint> partial, ArrayView<float> scales, ArrayView<float> reciprocals,
        ArrayView<uint> tensorAmax, uint signs)
        where TOuter : struct, INvOuter where THad : struct, IHadamardMode
    {
        // A thread per (column, quarter of the rows): two inner blocks each.
        int t = Group.IdxX, c = t & (NvCols - 1), b0 = 2 * (t / NvCols);
        // The two inner blocks in a loop (one copy of the RHT in the kernel's code), their amax bits kept in the scales'
        // own slots until the outer amax is known.
        uint m = 0;
        for (int b = b0; b < b0 + 2; b++)
        {
            uint inner = Group16<THad>(tile, 16 * b, c, signs, NvCols);
            scales.Cast<uint>()[b * NvCols + c] = inner;
            m = Max(m, inner);
        }
        partial[t] = m;
        Group.Barrier();
        uint outer = default(TOuter).PerTensor ? tensorAmax[0]
            : Max(Max(partial[c], partial[NvCols + c]), Max(partial[2 * NvCols + c], partial[3 * NvCols + c]));
        float so = BlockMath.NvOuter(outer);
        bool fits = true;
        for (int b = b0; b < b0 + 2; b++)
        {
            uint inner = scales.Cast<uint>()[b * NvCols + c];
            float scale = BlockMath.NvInner(outer, so, inner) * so;
            scales[b * NvCols + c] = scale;
            reciprocals[b * NvCols + c] = 1f / scale;
            fits &= SharedDivisor.BlockFits(scale, inner);
        }
        return Group.BarrierAnd(fits);
    }

    /// <summary>
    /// Row phase of an NVFP4 tile: as <see cref="MxRows"/> with each element's inner-block scale (NaN scale: the value is
    /// NaN). Where <paramref name="shared"/> (<see cref="NvColumns"/>) and a run has no tiny element, its quotients use the
    /// blocks' reciprocals (<see cref="SharedDivisor"/>: the division's bits); otherwise, and under Q-EMA, IEEE divisions.
    /// <paramref name="wholeRuns"/> (a constant at the call): cols is a multiple of 8, so a thread's run is whole
    /// or absent and the element-by-element paths are not compiled in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NvRows<TIo, T, TRound>(ArrayView<float> tile, ArrayView<float> scales, ArrayView<float> reciprocals, bool shared,
        ArrayView<T> y, ArrayView<float> ema, int rows, int cols, int r0, int c0, PhiloxKey seed, ulong stream, bool wholeRuns = false)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        // 4 threads a 32-column row, 32 rows a pass.
        int t = Group.IdxX, cc = (t & 3) * 8, rr = t >> 2;
        int n = Run(cols, c0 + cc);
        if (n == 0) return;
        bool vector = wholeRuns || IsVector(cols, n);
        bool blocks = wholeRuns || (cols & 3) == 0;
        for (int r = rr; r < 128 && r0 + r < rows; r += 32)
        {
            long i = (long)(r0 + r) * cols + c0 + cc;
            Vec8 v = Vec8Io.LoadFloats(tile, r * NvCols + cc), s = Vec8Io.LoadFloats(scales, (r >> 4) * NvCols + cc);
            Vec8 u = Uniforms<TRound>(seed, stream, i, n, blocks), e = Vec8Io.Ema<TRound>(ema, i, n, vector);
            Vec8 q;
            if (default(TRound).Mode != Rounding.EmaGuided && shared && !SharedDivisor.AnyTiny(v))
            {
                Vec8 d = Vec8Io.LoadFloats(reciprocals, (r >> 4) * NvCols + cc);
                q = new()
                {
                    V0 = SharedQuotient<TRound>(v.V0, s.V0, d.V0, u.V0), V1 = SharedQuotient<TRound>(v.V1, s.V1, d.V1, u.V1),
                    V2 = SharedQuotient<TRound>(v.V2, s.V2, d.V2, u.V2), V3 = SharedQuotient<TRound>(v.V3, s.V3, d.V3, u.V3),
                    V4 = SharedQuotient<TRound>(v.V4, s.V4, d.V4, u.V4), V5 = SharedQuotient<TRound>(v.V5, s.V5, d.V5, u.V5),
                    V6 = SharedQuotient<TRound>(v.V6, s.V6, d.V6, u.V6), V7 = SharedQuotient<TRound>(v.V7, s.V7, d.V7, u.V7),
                };
            }
            else
            {
                // A NaN scale (non-finite outer block) makes the value NaN whatever the grid value.
                q = new()
                {
                    V0 = BlockMath.NvOne<TRound>(v.V0, s.V0, u.V0, e.V0) * s.V0, V1 = BlockMath.NvOne<TRound>(v.V1, s.V1, u.V1, e.V1) * s.V1,
                    V2 = BlockMath.NvOne<TRound>(v.V2, s.V2, u.V2, e.V2) * s.V2, V3 = BlockMath.NvOne<TRound>(v.V3, s.V3, u.V3, e.V3) * s.V3,
                    V4 = BlockMath.NvOne<TRound>(v.V4, s.V4, u.V4, e.V4) * s.V4, V5 = BlockMath.NvOne<TRound>(v.V5, s.V5, u.V5, e.V5) * s.V5,
                    V6 = BlockMath.NvOne<TRound>(v.V6, s.V6, u.V6, e.V6) * s.V6, V7 = BlockMath.NvOne<TRound>(v.V7, s.V7, u.V7, e.V7) * s.V7,
                };
            }
            Vec8Io.Store<TIo, T>(y, i, n, vector, q);
        }
    }

    /// <summary>NvOne's value times the scale, for a block that fits the shared reciprocal (scale positive and finite).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float SharedQuotient<TRound>(float v, float scale, float reciprocal, float u) where TRound : struct, IRoundingMode =>
        Fp4Grid.Round<TRound>(SharedDivisor.Quotient(v, scale, reciprocal), u, 0f) * scale;
}
