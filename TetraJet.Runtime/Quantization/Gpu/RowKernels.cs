using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Where one lane of a row kernel works (<see cref="KernelGeometry.RowThreads"/>): a warp per 256 consecutive positions
/// of a row, 8 consecutive positions per lane, so an MX block is 4 lanes, an NVFP4 inner block 2 lanes and a 128-block
/// (NVFP4 outer block, FP8 group) 16 lanes. Index arithmetic is 32-bit; the element offset is widened once.
/// </summary>
internal readonly struct RowLane
{
    public readonly int Lane, Row, Pos, Count;
    public readonly long Index;
    /// <summary>The warp's row exists (warp-uniform).</summary>
    public readonly bool InRows;
    /// <summary>The row exists and the lane's 8 elements are one aligned 16-byte (bf16) or 32-byte (f32) run: vector accesses, one Philox block per 4.</summary>
    public readonly bool Vector;

    /// <summary>Lane <paramref name="lane"/> of the <paramref name="warp"/>-th run of 256 positions, counted over the rows.</summary>
    public RowLane(int warp, int lane, int rows, int cols)
    {
        int chunks = (cols + 255) >> 8;
        // Unsigned: the warp index and chunk count are non-negative, and an unsigned division is the shorter sequence.
        int row = (int)((uint)warp / (uint)chunks);
        this = new(row, warp - row * chunks, lane, rows, cols);
    }

    /// <summary>Lane <paramref name="lane"/> of run <paramref name="chunk"/> (of 256 positions) of row <paramref name="row"/>.</summary>
    RowLane(int row, int chunk, int lane, int rows, int cols)
    {
        Lane = lane;
        Row = row;
        Pos = chunk * 256 + lane * 8;
        Count = Min(Max(cols - Pos, 0), 8);
        InRows = Row < rows;
        Index = (long)Row * cols + Pos;
        // cols a multiple of 8 makes every row start, and so every lane's run, a multiple of 8 elements.
        Vector = InRows && (cols & 7) == 0 && Count == 8;
    }

    /// <summary>
    /// The same lane of the next run of 256 positions: the next chunk of this row, or the first of the next row. Derived
    /// from this run's row and chunk so that a lane taking two runs divides once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public RowLane Next(int rows, int cols)
    {
        int chunk = (Pos >> 8) + 1;
        bool wraps = chunk << 8 >= cols;
        return new(wraps ? Row + 1 : Row, wraps ? 0 : chunk, Lane, rows, cols);
    }

    /// <summary>The calling lane, a warp per run of 256 positions (<see cref="KernelGeometry.RowThreads"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static RowLane Current(int rows, int cols)
    {
        int t = ThreadIndex32();
        return new(t >> 5, t & 31, rows, cols);
    }

    /// <summary>
    /// The calling lane's first run where a warp takes two consecutive runs of 256 positions
    /// (<see cref="KernelGeometry.RowPairThreads"/>); the second is its <see cref="Next"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static RowLane FirstOfPair(int rows, int cols)
    {
        int t = ThreadIndex32();
        return new((t >> 5) << 1, t & 31, rows, cols);
    }
}

/// <summary>
/// Where one lane of the NVFP4 row kernel works (<see cref="KernelGeometry.Row16Threads"/>): a warp per 512 consecutive
/// positions of one row, 16 consecutive positions per lane (two runs of 8: lo and hi), so an NVFP4 inner block (and
/// its 16-point RHT) is one lane and a 128-block 8 lanes. The warp's row is one row, so <see cref="InRows"/> is warp-uniform.
/// </summary>
internal readonly struct NvLane
{
    public readonly int Lane, CountLo, CountHi;
    public readonly long Index;
    public readonly bool InRows, VectorLo, VectorHi;

    NvLane(int warp, int lane, int rows, int cols)
    {
        int chunks = (cols + 511) >> 9;
        int row = (int)((uint)warp / (uint)chunks);
        int pos = (warp - row * chunks) * 512 + lane * 16;
        Lane = lane;
        CountLo = Min(Max(cols - pos, 0), 8);
        CountHi = Min(Max(cols - pos - 8, 0), 8);
        InRows = row < rows;
        Index = (long)row * cols + pos;
        // cols a multiple of 8 makes every run start at a multiple of 8 elements (16-byte aligned bf16 runs).
        VectorLo = InRows && (cols & 7) == 0 && CountLo == 8;
        VectorHi = InRows && (cols & 7) == 0 && CountHi == 8;
    }

    /// <summary>The calling lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NvLane Current(int rows, int cols)
    {
        int t = ThreadIndex32();
        return new(t >> 5, t & 31, rows, cols);
    }
}

/// <summary>
/// Quantizers whose blocks run along the last axis of a row-major [rows, cols] tensor (a features axis: Q1, Q2, Q3),
/// specialised by struct type parameters. Signature: <see cref="RowKernel{T}"/>. With <see cref="Store"/> the same pass
/// also writes the operand's storage form (ALGORITHMS.md §1): codes [rows, cols/2] (FP4, element 2i in the low
/// nibble) or [rows, cols] (MXFP8), one scale byte per block, FP32 outer scales per 128 (NVFP4).
/// Reference beside each: <see cref="Reference.ReferenceQuantizer.QuantizePacked"/>; the tests compare bit for bit.
/// </summary>
/// <remarks>
/// Layout (<see cref="Mx"/>): <see cref="RowLane"/>, a warp taking two consecutive runs of 256 positions (<see cref="KernelGeometry.RowPairThreads"/>);
/// <see cref="Nv"/> gives each lane a whole inner block instead (<see cref="NvLane"/>).
/// Each lane reads the 8 elements of each run with one 16-byte load (bf16; two for f32), both loads issued before the
/// first run is quantized, so that a thread keeps two loads in flight; writes likewise; the block amax is a shuffle
/// reduction over the block's lanes. The SR uniforms are computed while the loads are in flight (<see cref="Vec8Io.WithUniforms"/>). Lanes past a row's end (cols not a
/// multiple of 256) load zeros (no amax changes), reach every shuffle and write nothing. Where cols is not a multiple
/// of 8 (a bare call with a padded last axis) the lanes fall back to element accesses and one Philox block per element.
/// </remarks>
public static class RowKernels
{
    /// <summary>MX blocks of 32 along the last axis; with RHT each 16 positions (2 lanes) are transformed first.</summary>
    public static void Mx<TIo, T, TRule, TRound, THad, TStore>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode where TStore : struct, IStoreMode
    {
        RowLane a = RowLane.FirstOfPair(rows, cols), b = a.Next(rows, cols);
        if (!a.InRows) return;
        Bits8 bitsA = Vec8Io.Prefetch<TIo, T>(x, a.Index, a.Vector), bitsB = Vec8Io.Prefetch<TIo, T>(x, b.Index, b.Vector);
        // b's row may not exist (the last warp of the tensor): then it loads nothing.
        Vec8Io.WithUniformsPair<TIo, T, TRound>(x, bitsA, a.Index, a.Count, a.Vector, bitsB, b.Index, b.InRows ? b.Count : 0, b.Vector, seed, stream,
            out var loadedA, out var loadedB);
        MxRun<TIo, T, TRule, TRound, THad, TStore>(a, loadedA, y, ema, codes, scales, signs);
        if (b.InRows) MxRun<TIo, T, TRule, TRound, THad, TStore>(b, loadedB, y, ema, codes, scales, signs);
    }

    /// <summary>One lane's run of <see cref="Mx"/>, loaded with its uniforms (<see cref="Vec8Io.WithUniformsPair"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MxRun<TIo, T, TRule, TRound, THad, TStore>(RowLane at, Loaded8 loaded, ArrayView<T> y, ArrayView<float> ema,
        ArrayView<byte> codes, ArrayView<byte> scales, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode where TStore : struct, IStoreMode
    {
        Vec8 v = loaded.V, u = loaded.U, e = Vec8Io.Ema<TRound>(ema, at.Index, at.Count, at.Vector);
        if (default(THad).Enabled) v = Hadamard2Lanes(v, (at.Lane & 1) != 0, signs);
        uint m = WarpMax(v.AbsMax(), 4);
        if (at.Count == 0) return;
        int s = BlockMath.MxExponent<TRule>(m);
        var g = BlockMath.MxGrid<TRule, TRound>(v, m, s, u, e);
        bool nan = m >= NonFiniteBits;
        BlockMath.StoreMx<TIo, T, TRule>(y, at.Index, at.Count, at.Vector, BlockMath.MxValues(g, s), !nan);
        if (!default(TStore).Enabled) return;
        // Storage needs cols a multiple of the block (the caller checks), so every lane holds 8 whole elements.
        if (default(TRule).Fp8) codes.Cast<ulong>()[at.Index >> 3] = BlockMath.Fp8Codes(g, nan);
        else codes.Cast<uint>()[at.Index >> 3] = BlockMath.Fp4Codes(g, nan);
        if ((at.Lane & 3) == 0) scales[at.Index >> 5] = nan ? E8M0.NaN : E8M0.Encode(s);
    }

    /// <summary>
    /// NVFP4 inner blocks of 16 along the last axis, one per lane (<see cref="NvLane"/>: the RHT in registers, the block
    /// scale computed once); the outer amax is the 128-block's (8 lanes, TetraJet-v2) or the per-tensor amax bits in
    /// <paramref name="tensorAmax"/>[0] (NVIDIA recipe). Storage: TetraJet-v2's double block only. Both runs' loads are
    /// issued before either is widened, as in <see cref="Mx"/>.
    /// </summary>
    public static void Nv<TIo, T, TOuter, TRound, THad, TStore>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TOuter : struct, INvOuter
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode where TStore : struct, IStoreMode
    {
        NvLane at = NvLane.Current(rows, cols);
        if (!at.InRows) return;
        long iHi = at.Index + 8;
        Bits8 bitsLo = Vec8Io.Prefetch<TIo, T>(x, at.Index, at.VectorLo), bitsHi = Vec8Io.Prefetch<TIo, T>(x, iHi, at.VectorHi);
        Vec8Io.WithUniformsPair<TIo, T, TRound>(x, bitsLo, at.Index, at.CountLo, at.VectorLo, bitsHi, iHi, at.CountHi, at.VectorHi, seed, stream,
            out var lo, out var hi);
        // With the RHT, v holds its sums before the 1/4, which the block amax and the quotients take in (NvGridPair).
        Vec8 vLo = lo.V, vHi = hi.V;
        if (default(THad).Enabled) Hadamard16Unscaled(ref vLo, ref vHi, signs);
        uint amaxV = Max(vLo.AbsMax(), vHi.AbsMax()), inner = default(THad).Enabled ? Quarter(amaxV) : amaxV;
        uint outerBits = default(TOuter).PerTensor ? tensorAmax[0] : WarpMax(inner, 8);
        if (at.CountLo == 0) return;
        bool bad = outerBits >= NonFiniteBits;
        float so = BlockMath.NvOuter(outerBits), si = BlockMath.NvInner(outerBits, so, inner), scale = si * so;
        BlockMath.NvGridPair<TRound, THad>(vLo, vHi, scale, bad, amaxV, lo.U, hi.U, Vec8Io.Ema<TRound>(ema, at.Index, at.CountLo, at.VectorLo),
            Vec8Io.Ema<TRound>(ema, iHi, at.CountHi, at.VectorHi), out var gLo, out var gHi);
        Vec8Io.Store<TIo, T>(y, at.Index, at.CountLo, at.VectorLo, BlockMath.NvValues(gLo, scale, bad));
        if (at.CountHi > 0) Vec8Io.Store<TIo, T>(y, iHi, at.CountHi, at.VectorHi, BlockMath.NvValues(gHi, scale, bad));
        if (!default(TStore).Enabled) return;
        // Storage needs cols a multiple of 16 (the caller checks), so every lane holds one whole block.
        codes.Cast<ulong>()[at.Index >> 4] = BlockMath.Fp4Codes(gLo, false) | (ulong)BlockMath.Fp4Codes(gHi, false) << 32;
        scales[at.Index >> 4] = E4M3.Encode(si);
        if ((at.Lane & 7) == 0) outer[at.Index >> 7] = so;
    }

    /// <summary>
    /// Per-tensor NVFP4 with 16×16 tiles (reference: ReferenceQuantizer.NvTiles): one thread per (16-row band, 8 columns),
    /// a tile's amax reduced over the 2 lanes of its 16 columns; the band is read twice (amax, then rounding; the second
    /// time from cache) with 16-byte accesses. Needs rows and cols multiples of 16 (so 8 | cols). No storage form (the
    /// NVIDIA recipe keeps its weight dequantized). Launched over <see cref="KernelGeometry.Tile16Threads"/>.
    /// </summary>
    public static void NvTile16<TIo, T, TRound>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        int t = ThreadIndex32(), perRow = cols >> 3;
        int band = t / perRow, c = (t - band * perRow) * 8;
        bool active = band < rows >> 4;
        long i0 = (long)band * 16 * cols + c;
        uint m = 0;
        if (active)
            for (int k = 0; k < 16; k++) m = Max(m, default(TIo).Load8(x, i0 + (long)k * cols).AbsMax());
        // Every lane reaches the shuffle; the two lanes of a tile share their band (perRow is even).
        m = WarpMax(m, 2);
        if (!active) return;
        uint outerBits = tensorAmax[0];
        bool bad = outerBits >= NonFiniteBits;
        float so = BlockMath.NvOuter(outerBits), scale = BlockMath.NvInner(outerBits, so, m) * so;
        for (int k = 0; k < 16; k++)
        {
            long i = i0 + (long)k * cols;
            var g = BlockMath.NvGrid<TRound>(default(TIo).Load8(x, i), scale, bad, m, Uniforms<TRound>(seed, stream, i, 8, true),
                Vec8Io.Ema<TRound>(ema, i, 8, true));
            default(TIo).Store8(y, i, BlockMath.NvValues(g, scale, bad));
        }
    }
}
