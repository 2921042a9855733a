using System.Runtime.CompilerServices;

namespace TetraJet.Formats;

/// <summary>
/// FP4 E2M1: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, magnitude codes 0..7 in that order, sign in bit 3 (ALGORITHMS.md §1–2).
/// All rounding functions take the already-scaled value v and return the grid value with v's sign.
/// </summary>
public static class E2M1
{
    public const float Max = 6f;

    /// <summary>The grid value of magnitude code 0..7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Magnitude(int code) => code < 2
        ? code * 0.5f
        : Bits.Pow2((code >> 1) - 1) * (1f + 0.5f * (code & 1));

    /// <summary>Value of a 4-bit code (bit 3 = sign).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Decode(int code4) => (code4 & 8) != 0 ? -Magnitude(code4 & 7) : Magnitude(code4 & 7);

    /// <summary>Magnitude code of the largest grid value ≤ a (a ≥ 0, saturating at 6).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int FloorCode(float a) =>
        a < 2f ? (a < 1f ? (a < 0.5f ? 0 : 1) : (a < 1.5f ? 2 : 3))
               : (a < 4f ? (a < 3f ? 4 : 5) : (a < 6f ? 6 : 7));

    /// <summary>Magnitude code nearest to a (a ≥ 0), ties to the even code: 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2, 3.5→4, 5→4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestCode(float a) =>
        a <= 1.25f ? (a <= 0.25f ? 0 : (a < 0.75f ? 1 : 2))
                   : (a <= 2.5f ? (a < 1.75f ? 3 : 4) : (a < 3.5f ? 5 : (a <= 5f ? 6 : 7)));

    /// <summary>Round to nearest, ties to even; saturates at ±6; zero stays zero (sign kept).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundNearest(float v) => Bits.WithSignOf(Magnitude(NearestCode(Bits.Abs(v))), v);

    /// <summary>Stochastic rounding: hi if u &lt; (a − lo)/(hi − lo), else lo. u ∈ [0, 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundStochastic(float v, float u)
    {
        float a = Bits.Abs(v);
        if (a > Max) a = Max;
        int c = FloorCode(a);
        float lo = Magnitude(c);
        if (c == 7) return Bits.WithSignOf(lo, v);
        float hi = Magnitude(c + 1);
        // a − lo and the division by a power of two (hi − lo) are both exact.
        float p = (a - lo) / (hi - lo);
        return Bits.WithSignOf(u < p ? hi : lo, v);
    }

    /// <summary>Q-EMA: hi if sign(v)·e ≥ (lo + hi)/2, else lo; e is the EMA weight divided by the same scale as v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundEmaGuided(float v, float e)
    {
        float a = Bits.Abs(v);
        if (a > Max) a = Max;
        int c = FloorCode(a);
        float lo = Magnitude(c);
        if (c == 7) return Bits.WithSignOf(lo, v);
        float hi = Magnitude(c + 1);
        float se = (Bits.AsUInt(v) & 0x80000000u) != 0 ? -e : e;
        return Bits.WithSignOf(se >= (lo + hi) * 0.5f ? hi : lo, v);
    }

    /// <summary>4-bit code of a value that is already on the grid (output of a rounding function).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Encode(float q)
    {
        int sign = (Bits.AsUInt(q) & 0x80000000u) != 0 ? 8 : 0;
        return sign | FloorCode(Bits.Abs(q));
    }
}
