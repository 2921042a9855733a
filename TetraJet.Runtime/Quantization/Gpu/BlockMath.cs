using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The block steps of ALGORITHMS.md §3 on eight elements at a time, shared by every kernel family. Reference beside each:
/// ReferenceQuantizer.MxBlock and NvInner; every kernel built on them is compared with the reference bit for bit.
/// </summary>
public static class BlockMath
{
    // ---------------------------------------------------------------- MX (MXFP4 both rules, MXFP8)

    /// <summary>
    /// Reference: ScalarCore.MxExponent. The block exponent of an MX block with amax bits <paramref name="amax"/> (the
    /// minimum for a zero or non-finite block), from the bits without branches: each rule's "smallest s with
    /// amax ≤ top·2^s" is amax's exponent field after adding just under the rule's fraction threshold (a carry into the
    /// exponent exactly when the fraction is above it: 1.5 for E2M1's 6, 1.75 for E4M3's 448; none for the OCP floor),
    /// minus the bias and the grid's top exponent. Subnormal and zero amax land below the clamp, as the reference's
    /// normalised exponent does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MxExponent<TRule>(uint amax) where TRule : struct, IMxRule
    {
        int s = default(TRule).Fp8 ? (int)((amax + 0x1FFFFFu) >> 23) - 135
            : default(TRule).Rule == ScaleRule.Ocp ? (int)(amax >> 23) - 129
            : (int)((amax + 0x3FFFFFu) >> 23) - 129;
        s = Math.Min(Math.Max(s, E8M0.MinExponent), E8M0.MaxExponent);
        return amax >= NonFiniteBits ? E8M0.MinExponent : s;
    }

    /// <summary>
    /// Reference: ScalarCore.MxGrid. One already-scaled element (v = x·2^-s, e = ema·2^-s) onto the element grid; the
    /// uniform as ticks (<see cref="KernelMath.Ticks"/>), made a uniform again (exactly) for the scalar FP8 rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MxOne<TRule, TRound>(float v, float ticks, float e) where TRule : struct, IMxRule where TRound : struct, IRoundingMode =>
        default(TRule).Fp8 ? ScalarCore.RoundFp8(v, default(TRound).Mode, ticks * (1f / KernelMath.TicksPerUnit), e) : Fp4Grid.Round<TRound>(v, ticks, e);

    /// <summary>
    /// Reference: ReferenceQuantizer.MxBlock. The grid values of eight elements of an MX block with amax bits
    /// <paramref name="amax"/> and exponent <paramref name="s"/>: NaN in a non-finite block, +0 in a zero block.
    /// x·2^-s is a multiplication by an exact power of two, as in the reference.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 MxGrid<TRule, TRound>(Vec8 v, uint amax, int s, Vec8 u, Vec8 e) where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        Vec8 g = default;
        if (amax >= NonFiniteBits)
        {
            g.V0 = g.V1 = g.V2 = g.V3 = g.V4 = g.V5 = g.V6 = g.V7 = float.NaN;
            return g;
        }
        if (amax == 0) return g;
        float inv = Bits.Pow2(-s);
        g.V0 = MxOne<TRule, TRound>(v.V0 * inv, u.V0, e.V0 * inv);
        g.V1 = MxOne<TRule, TRound>(v.V1 * inv, u.V1, e.V1 * inv);
        g.V2 = MxOne<TRule, TRound>(v.V2 * inv, u.V2, e.V2 * inv);
        g.V3 = MxOne<TRule, TRound>(v.V3 * inv, u.V3, e.V3 * inv);
        g.V4 = MxOne<TRule, TRound>(v.V4 * inv, u.V4, e.V4 * inv);
        g.V5 = MxOne<TRule, TRound>(v.V5 * inv, u.V5, e.V5 * inv);
        g.V6 = MxOne<TRule, TRound>(v.V6 * inv, u.V6, e.V6 * inv);
        g.V7 = MxOne<TRule, TRound>(v.V7 * inv, u.V7, e.V7 * inv);
        return g;
    }

    /// <summary>The values Q = g·2^s (exact scalings; NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 MxValues(Vec8 g, int s) => g.Times(Bits.Pow2(s));

    /// <summary>
    /// Stores MX values (all finite where <paramref name="finite"/>): MXFP4 values (E2M1 × 2^s, at least 2^-128) are
    /// exact in bfloat16, so they skip the rounding step; MXFP8 values can be FP32 subnormals with bits below
    /// bfloat16's, so they round as any value does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreMx<TIo, T, TRule>(ArrayView<T> y, long i, int n, bool vector, Vec8 q, bool finite)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
    {
        if (default(TRule).Fp8) Vec8Io.Store<TIo, T>(y, i, n, vector, q);
        else Vec8Io.StoreExact<TIo, T>(y, i, n, vector, q, finite);
    }

    /// <summary>
    /// The 4-bit codes of eight grid values in one word (element 2k in the low nibble of byte k); 0 for a non-finite block.
    /// Reference: E2M1.Encode per element. Each grid value times 2^-126 (exact; subnormals
    /// kept) holds its code in bits 22..24 of its FP32 bits: 0.5 becomes 2^-127 (1 &lt;&lt; 22), 1 the smallest normal
    /// (2 &lt;&lt; 22), and each grid step above adds 1 &lt;&lt; 22, with nothing below bit 22. Adding the bits shifted down by 6
    /// puts the sign (bit 31) at bit 25 beside them (the fields do not overlap, so the sum is an OR): the nibble is bits
    /// 22..25, moved into place with one shift and a masked OR: four instructions per element in ptxas 11.8's SASS, where
    /// the compares and selects took fourteen.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Fp4Codes(Vec8 g, bool nan) => nan ? 0u
        : (Nibble(g.V0) >> 22 & 0xFu) | (Nibble(g.V1) >> 18 & 0xF0u) | (Nibble(g.V2) >> 14 & 0xF00u) | (Nibble(g.V3) >> 10 & 0xF000u)
        | (Nibble(g.V4) >> 6 & 0xF0000u) | (Nibble(g.V5) >> 2 & 0xF00000u) | (Nibble(g.V6) << 2 & 0xF000000u) | (Nibble(g.V7) << 6 & 0xF0000000u);

    /// <summary>A grid value's code and sign in bits 22..25 (<see cref="Fp4Codes"/>); other bits below 22 may be set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Nibble(float g)
    {
        uint b = Bits.AsUInt(g * 1.17549435E-38f);
        return b + (b >> 6);
    }

    /// <summary>The E4M3 codes of eight MXFP8 grid values in one 64-bit word (element k in byte k); 0 for a non-finite block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Fp8Codes(Vec8 g, bool nan) => nan ? 0ul
        : E4M3.Encode(g.V0) | (ulong)E4M3.Encode(g.V1) << 8 | (ulong)E4M3.Encode(g.V2) << 16 | (ulong)E4M3.Encode(g.V3) << 24
        | (ulong)E4M3.Encode(g.V4) << 32 | (ulong)E4M3.Encode(g.V5) << 40 | (ulong)E4M3.Encode(g.V6) << 48 | (ulong)E4M3.Encode(g.V7) << 56;

    // ---------------------------------------------------------------- NVFP4 (double block and per-tensor)

    /// <summary>Reference: ReferenceQuantizer (outer block). The outer scale s_o (NaN for a non-finite outer block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvOuter(uint outer) => outer >= NonFiniteBits ? float.NaN : ScalarCore.NvOuterScale(Bits.AsFloat(outer));

    /// <summary>
    /// Reference: ReferenceQuantizer.NvInner (ScalarCore.NvInnerScale). The inner E4M3 scale s_i under outer scale
    /// <paramref name="so"/> (NaN for a non-finite outer block): the quotient's rounding without branches
    /// (<see cref="E4M3.RoundMagnitude"/>; the quotient is non-negative or NaN).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvInner(uint outer, float so, uint inner)
    {
        if (outer >= NonFiniteBits) return float.NaN;
        float d = so * 6f;
        return d == 0f ? 0f : E4M3.RoundMagnitude(Bits.AsFloat(inner) / d);
    }

    /// <summary>Reference: ReferenceQuantizer.NvInner. One element: round(x / scale) with IEEE divisions (the spec's), 0 for a zero scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvOne<TRound>(float v, float scale, float u, float e) where TRound : struct, IRoundingMode
    {
        // Divide by 1 where the scale is 0 and select afterwards: one flat select instead of a branch around the division.
        float d = scale == 0f ? 1f : scale;
        float g = Fp4Grid.Round<TRound>(v / d, u, e / d);
        return scale == 0f ? 0f : g;
    }

    /// <summary>
    /// The grid values of eight NVFP4 elements with block scale FP32(s_i·s_o); 0 where the outer block is non-finite.
    /// <paramref name="amax"/> bounds every |v| (the block's amax bits): the quotients share one reciprocal
    /// (<see cref="SharedDivisor"/>, the same bits as the divisions), except under Q-EMA, whose EMA quotients have no such bound.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 NvGrid<TRound>(Vec8 v, float scale, bool bad, uint amax, Vec8 u, Vec8 e) where TRound : struct, IRoundingMode
    {
        Vec8 g = default;
        if (bad) return g;
        if (default(TRound).Mode == Rounding.EmaGuided)
        {
            g.V0 = NvOne<TRound>(v.V0, scale, u.V0, e.V0);
            g.V1 = NvOne<TRound>(v.V1, scale, u.V1, e.V1);
            g.V2 = NvOne<TRound>(v.V2, scale, u.V2, e.V2);
            g.V3 = NvOne<TRound>(v.V3, scale, u.V3, e.V3);
            g.V4 = NvOne<TRound>(v.V4, scale, u.V4, e.V4);
            g.V5 = NvOne<TRound>(v.V5, scale, u.V5, e.V5);
            g.V6 = NvOne<TRound>(v.V6, scale, u.V6, e.V6);
            g.V7 = NvOne<TRound>(v.V7, scale, u.V7, e.V7);
            return g;
        }
        // A zero scale (an all-zero outer block) gives zeros, as NvOne does.
        if (scale == 0f) return g;
        return RoundAll<TRound>(SharedDivisor.Divide(v, scale, amax), u);
    }

    /// <summary>
    /// <see cref="NvGrid{TRound}"/> of a whole inner block held as two runs (<paramref name="lo"/>, <paramref name="hi"/>),
    /// with one range check and one reciprocal (<see cref="SharedDivisor.DividePair"/>). With <typeparamref name="THad"/>
    /// the runs hold the RHT's sums before its 1/4 and <paramref name="amax"/> is their amax bits: the 1/4 goes into the
    /// divisor, so no element is scaled on its own. Under Q-EMA each run is rounded as <see cref="NvGrid{TRound}"/> does
    /// (with the RHT outputs formed first).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NvGridPair<TRound, THad>(Vec8 lo, Vec8 hi, float scale, bool bad, uint amax, Vec8 uLo, Vec8 uHi, Vec8 eLo, Vec8 eHi,
        out Vec8 gLo, out Vec8 gHi) where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        bool quarters = default(THad).Enabled;
        if (default(TRound).Mode == Rounding.EmaGuided)
        {
            uint m = quarters ? KernelMath.Quarter(amax) : amax;
            gLo = NvGrid<TRound>(quarters ? lo.Times(0.25f) : lo, scale, bad, m, uLo, eLo);
            gHi = NvGrid<TRound>(quarters ? hi.Times(0.25f) : hi, scale, bad, m, uHi, eHi);
            return;
        }
        gLo = default;
        gHi = default;
        if (bad || scale == 0f) return;
        SharedDivisor.DividePair(lo, hi, scale, amax, quarters, out Vec8 qLo, out Vec8 qHi);
        gLo = RoundAll<TRound>(qLo, uLo);
        gHi = RoundAll<TRound>(qHi, uHi);
    }

    /// <summary>Eight quotients onto the E2M1 grid (SR or RTN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 RoundAll<TRound>(Vec8 q, Vec8 u) where TRound : struct, IRoundingMode => new()
    {
        V0 = Fp4Grid.Round<TRound>(q.V0, u.V0, 0f), V1 = Fp4Grid.Round<TRound>(q.V1, u.V1, 0f),
        V2 = Fp4Grid.Round<TRound>(q.V2, u.V2, 0f), V3 = Fp4Grid.Round<TRound>(q.V3, u.V3, 0f),
        V4 = Fp4Grid.Round<TRound>(q.V4, u.V4, 0f), V5 = Fp4Grid.Round<TRound>(q.V5, u.V5, 0f),
        V6 = Fp4Grid.Round<TRound>(q.V6, u.V6, 0f), V7 = Fp4Grid.Round<TRound>(q.V7, u.V7, 0f),
    };

    /// <summary>The values Q = g·scale (NaN throughout a non-finite outer block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 NvValues(Vec8 g, float scale, bool bad) => g.Times(bad ? float.NaN : scale);
}
