using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Quantizers whose blocks run along the last axis of a row-major [rows, cols] tensor (a features axis: Q1, Q2, Q3),
/// specialised by struct type parameters. Signature: <see cref="RowKernel{T}"/>. With <see cref="Store"/> the same pass
/// also writes the operand's storage form (ALGORITHMS.md §1): codes [rows, cols/2] (FP4, element 2i in the low
/// nibble) or [rows, cols] (MXFP8), one scale byte per block, FP32 outer scales per 128 (NVFP4).
/// Reference beside each: <see cref="Reference.ReferenceQuantizer.QuantizePacked"/>; the tests compare bit for bit.
/// </summary>
/// <remarks>
/// One warp per 128 consecutive positions of a row, 4 per lane: an MX block is 8 lanes, an NVFP4 inner block 4 lanes,
/// an outer 128-block the whole warp. The last warp of a row is partly past its end when cols is not a multiple of
/// 128; its lanes there load zeros (no amax changes) and write nothing. Every lane reaches every shuffle.
/// </remarks>
public static class RowKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Uniform<TRound>(ulong seed, ulong stream, long i) where TRound : struct, IRoundingMode =>
        default(TRound).Mode == Rounding.Stochastic ? Randomness.Philox.Uniform(seed, stream, i) : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Ema<TRound>(ArrayView<float> ema, long i) where TRound : struct, IRoundingMode =>
        default(TRound).Mode == Rounding.EmaGuided ? ema[i] : 0f;

    /// <summary>This lane's row and first position, and its 4 elements of x (zeros past the row's end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Lane<TIo, T>(ArrayView<T> x, int rows, int cols, out int lane, out long i, out int p,
        out float v0, out float v1, out float v2, out float v3)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        p = (int)(warp - row * chunks) * 128 + lane * 4;
        bool active = row < rows;
        i = row * cols + p;
        var io = default(TIo);
        v0 = active && p < cols ? io.Load(x, i) : 0f;
        v1 = active && p + 1 < cols ? io.Load(x, i + 1) : 0f;
        v2 = active && p + 2 < cols ? io.Load(x, i + 2) : 0f;
        v3 = active && p + 3 < cols ? io.Load(x, i + 3) : 0f;
        return active;
    }

    // ---------------------------------------------------------------- MX (MXFP4 both rules, MXFP8)

    /// <summary>
    /// Reference: ReferenceQuantizer.MxBlock. The grid value of one element of an MX block with amax bits
    /// <paramref name="amax"/> (NaN in a non-finite block, 0 in a zero block) and the block's exponent.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float MxGrid<TRule, TRound>(ArrayView<float> ema, long i, float v, uint amax, int s, ulong seed, ulong stream)
        where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        if (amax >= NonFiniteBits) return float.NaN;
        if (amax == 0) return 0f;
        return ScalarCore.MxGrid(v, s, default(TRule).Fp8, default(TRound).Mode, Uniform<TRound>(seed, stream, i), Ema<TRound>(ema, i));
    }

    /// <summary>The block exponent of an MX block with amax bits <paramref name="amax"/> (the minimum for a zero or non-finite block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int MxExponent<TRule>(uint amax) where TRule : struct, IMxRule =>
        amax == 0 || amax >= NonFiniteBits ? E8M0.MinExponent : ScalarCore.MxExponent(Bits.AsFloat(amax), default(TRule).Fp8, default(TRule).Rule);

    /// <summary>Stores one element: y = g·2^s (exact), and its code when storing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MxStore<TIo, T>(ArrayView<T> y, long i, float g, int s) where T : unmanaged where TIo : struct, IElementIo<T> =>
        default(TIo).Store(y, i, g * Bits.Pow2(s));

    /// <summary>MX blocks of 32 along the last axis; with RHT each 16 positions are transformed first (4 lanes).</summary>
    public static void Mx<TIo, T, TRule, TRound, THad, TStore>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode where TStore : struct, IStoreMode
    {
        bool active = Lane<TIo, T>(x, rows, cols, out int lane, out long i, out int p, out float v0, out float v1, out float v2, out float v3);
        if (default(THad).Enabled) Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        uint m = WarpMax(Max(Max(AbsBits(v0), AbsBits(v1)), Max(AbsBits(v2), AbsBits(v3))), 8);
        if (!active || p >= cols) return;
        int s = MxExponent<TRule>(m);
        float g0 = MxGrid<TRule, TRound>(ema, i, v0, m, s, seed, stream);
        float g1 = p + 1 < cols ? MxGrid<TRule, TRound>(ema, i + 1, v1, m, s, seed, stream) : 0f;
        float g2 = p + 2 < cols ? MxGrid<TRule, TRound>(ema, i + 2, v2, m, s, seed, stream) : 0f;
        float g3 = p + 3 < cols ? MxGrid<TRule, TRound>(ema, i + 3, v3, m, s, seed, stream) : 0f;
        MxStore<TIo, T>(y, i, g0, s);
        if (p + 1 < cols) MxStore<TIo, T>(y, i + 1, g1, s);
        if (p + 2 < cols) MxStore<TIo, T>(y, i + 2, g2, s);
        if (p + 3 < cols) MxStore<TIo, T>(y, i + 3, g3, s);
        if (!default(TStore).Enabled) return;
        // Storage needs cols a multiple of the block (the caller checks), so a lane holds 4 whole elements.
        bool nan = m >= NonFiniteBits;
        if (default(TRule).Fp8)
            codes.Cast<uint>()[i >> 2] = nan ? 0u
                : E4M3.Encode(g0) | (uint)E4M3.Encode(g1) << 8 | (uint)E4M3.Encode(g2) << 16 | (uint)E4M3.Encode(g3) << 24;
        else
            codes.Cast<ushort>()[i >> 2] = (ushort)(nan ? 0
                : E2M1.Encode(g0) | E2M1.Encode(g1) << 4 | E2M1.Encode(g2) << 8 | E2M1.Encode(g3) << 12);
        if ((lane & 7) == 0) scales[i >> 5] = nan ? E8M0.NaN : E8M0.Encode(s);
    }

    // ---------------------------------------------------------------- NVFP4 (double block and per-tensor)

    /// <summary>Reference: ReferenceQuantizer.NvInner. The outer scale s_o (NaN for a non-finite outer block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NvOuter(uint outer) => outer >= NonFiniteBits ? float.NaN : ScalarCore.NvOuterScale(Bits.AsFloat(outer));

    /// <summary>The inner E4M3 scale s_i of a block with amax bits <paramref name="inner"/> under outer scale <paramref name="so"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NvInner(float so, uint inner) => so == 0f ? 0f : ScalarCore.NvInnerScale(Bits.AsFloat(inner), so);

    /// <summary>Reference: ReferenceQuantizer.NvInner. Block scale FP32(s_i·s_o) from the outer and inner amax bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NvScale(uint outer, uint inner, out bool bad)
    {
        bad = outer >= NonFiniteBits;
        if (bad) return float.NaN;
        float so = ScalarCore.NvOuterScale(Bits.AsFloat(outer));
        return NvInner(so, inner) * so;
    }

    /// <summary>The grid value of one NVFP4 element (0 where the block is non-finite: its value is NaN regardless).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NvGrid<TRound>(ArrayView<float> ema, long i, float v, float scale, bool bad, ulong seed, ulong stream)
        where TRound : struct, IRoundingMode =>
        bad ? 0f : ScalarCore.NvGrid(v, scale, default(TRound).Mode, Uniform<TRound>(seed, stream, i), Ema<TRound>(ema, i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NvStore<TIo, T>(ArrayView<T> y, long i, float g, float scale, bool bad) where T : unmanaged where TIo : struct, IElementIo<T> =>
        default(TIo).Store(y, i, bad ? float.NaN : g * scale);

    /// <summary>
    /// NVFP4 inner blocks of 16 along the last axis: one warp per 128 positions (= one outer block). The outer amax is
    /// the warp's (TetraJet-v2) or the per-tensor amax bits in <paramref name="tensorAmax"/>[0] (NVIDIA recipe).
    /// Storage: TetraJet-v2's double block only.
    /// </summary>
    public static void Nv<TIo, T, TOuter, TRound, THad, TStore>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TOuter : struct, INvOuter
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode where TStore : struct, IStoreMode
    {
        bool active = Lane<TIo, T>(x, rows, cols, out int lane, out long i, out int p, out float v0, out float v1, out float v2, out float v3);
        if (default(THad).Enabled) Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        uint inner = WarpMax(Max(Max(AbsBits(v0), AbsBits(v1)), Max(AbsBits(v2), AbsBits(v3))), 4);
        uint outerBits = default(TOuter).PerTensor ? tensorAmax[0] : WarpMaxFrom(inner, 4);
        if (!active || p >= cols) return;
        bool bad = outerBits >= NonFiniteBits;
        float so = NvOuter(outerBits);
        float si = bad ? float.NaN : NvInner(so, inner);
        float scale = si * so;
        float g0 = NvGrid<TRound>(ema, i, v0, scale, bad, seed, stream);
        float g1 = p + 1 < cols ? NvGrid<TRound>(ema, i + 1, v1, scale, bad, seed, stream) : 0f;
        float g2 = p + 2 < cols ? NvGrid<TRound>(ema, i + 2, v2, scale, bad, seed, stream) : 0f;
        float g3 = p + 3 < cols ? NvGrid<TRound>(ema, i + 3, v3, scale, bad, seed, stream) : 0f;
        NvStore<TIo, T>(y, i, g0, scale, bad);
        if (p + 1 < cols) NvStore<TIo, T>(y, i + 1, g1, scale, bad);
        if (p + 2 < cols) NvStore<TIo, T>(y, i + 2, g2, scale, bad);
        if (p + 3 < cols) NvStore<TIo, T>(y, i + 3, g3, scale, bad);
        if (!default(TStore).Enabled) return;
        codes.Cast<ushort>()[i >> 2] = (ushort)(E2M1.Encode(g0) | E2M1.Encode(g1) << 4 | E2M1.Encode(g2) << 8 | E2M1.Encode(g3) << 12);
        if ((lane & 3) == 0) scales[i >> 4] = E4M3.Encode(si);
        if (lane == 0) outer[i >> 7] = so;
    }

    /// <summary>
    /// Per-tensor NVFP4 with 16×16 tiles (reference: ReferenceQuantizer.NvTiles): one thread per (column, 16-row band),
    /// the tile amax reduced over 16 lanes. Needs rows and cols multiples of 16. No storage form (the NVIDIA recipe keeps
    /// its weight dequantized). Launched over (rows / 16)·cols threads.
    /// </summary>
    public static void NvTile16<TIo, T, TRound>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        long t = ThreadIndex();
        long band = t / cols;
        int c = (int)(t - band * cols);
        bool active = band < rows / 16;
        long i0 = band * 16 * cols + c;
        uint m = 0;
        if (active)
            for (int k = 0; k < 16; k++) m = Max(m, AbsBits(default(TIo).Load(x, i0 + (long)k * cols)));
        m = WarpMax(m, 16);
        if (!active) return;
        float scale = NvScale(tensorAmax[0], m, out bool bad);
        for (int k = 0; k < 16; k++)
        {
            long i = i0 + (long)k * cols;
            NvStore<TIo, T>(y, i, NvGrid<TRound>(ema, i, default(TIo).Load(x, i), scale, bad, seed, stream), scale, bad);
        }
    }
}
