using System.Runtime.CompilerServices;
using TetraJet.Formats;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The E2M1 roundings of ALGORITHMS.md §2 without branch trees, for the kernels: the grid brackets come from the bits of
/// the saturated |v| (one fraction bit above 1, halves below), so each mode is a few integer operations and selects.
/// Reference beside each: <see cref="E2M1"/>; KernelMathTests compare them on every float class (ties, saturation,
/// subnormals, signed zeros) bit for bit. None of them is called with NaN (the block paths return NaN first).
/// </summary>
public static class Fp4Grid
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Saturated(float v)
    {
        float a = Bits.Abs(v);
        return a > E2M1.Max ? E2M1.Max : a;
    }

    /// <summary>Reference: E2M1.RoundNearest. Below 1 the grid is the multiples of 0.5; above, one fraction bit (RNE on the bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Nearest(float v)
    {
        float a = Saturated(v);
        // Below 1 the candidates are 0, 0.5 and 1; the ties 0.25 and 0.75 go to the even codes 0 and 2.
        float small = a <= 0.25f ? 0f : a < 0.75f ? 0.5f : 1f;
        uint b = Bits.AsUInt(a);
        float large = Bits.AsFloat((b + 0x1FFFFFu + ((b >> 22) & 1u)) & 0xFFC00000u);
        return Bits.WithSignOf(a < 1f ? small : large, v);
    }

    /// <summary>The grid values lo ≤ a &lt; hi around the saturated a = min(|v|, 6) (hi = lo = 6 at 6) and 1/(hi − lo).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Bracket(float v, out float lo, out float hi, out float inverseStep)
    {
        float a = Saturated(v);
        uint b = Bits.AsUInt(a), t = b & 0xFFC00000u;
        bool small = a < 1f;
        lo = small ? (a < 0.5f ? 0f : 0.5f) : Bits.AsFloat(t);
        float next = small ? lo + 0.5f : Bits.AsFloat(t + 0x400000u);
        hi = a >= E2M1.Max ? E2M1.Max : next;
        // The step above 1 is 2^(e−1) for a in [2^e, 2^(e+1)); its inverse 2^(1−e) has biased exponent 255 − biased(a).
        inverseStep = small ? 2f : Bits.AsFloat((255u - (b >> 23)) << 23);
        return a;
    }

    /// <summary>Reference: E2M1.RoundStochastic. (a − lo)·2^k equals the reference's exact division by the power of two hi − lo.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Stochastic(float v, float u)
    {
        float a = Bracket(v, out float lo, out float hi, out float inverseStep);
        return Bits.WithSignOf(u < (a - lo) * inverseStep ? hi : lo, v);
    }

    /// <summary>Reference: E2M1.RoundEmaGuided.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float EmaGuided(float v, float e)
    {
        Bracket(v, out float lo, out float hi, out _);
        float se = (Bits.AsUInt(v) & 0x80000000u) != 0 ? -e : e;
        return Bits.WithSignOf(se >= (lo + hi) * 0.5f ? hi : lo, v);
    }

    /// <summary>Reference: ScalarCore.RoundFp4 with the mode a compile-time constant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round<TRound>(float v, float u, float e) where TRound : struct, IRoundingMode => default(TRound).Mode switch
    {
        Rounding.Stochastic => Stochastic(v, u),
        Rounding.EmaGuided => EmaGuided(v, e),
        _ => Nearest(v),
    };

    /// <summary>Reference: E2M1.Encode. The 4-bit code of a grid value: below 1 it is 2|g|; above, the exponent and fraction bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Code(float g)
    {
        uint b = Bits.AsUInt(g), sign = (b >> 28) & 8u;
        float a = Bits.Abs(g);
        // 1.0 = 0x3F800000: bits >> 22 is 254 for code 2, and each grid step above adds one.
        return sign | (a < 1f ? (uint)(a * 2f) : (Bits.AsUInt(a) >> 22) - 252u);
    }

    /// <summary>Reference: E2M1.Decode. The value of the 4-bit code in the low bits of <paramref name="w"/> (bit 3 the sign).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Decode(uint w)
    {
        uint m = w & 7u;
        float a = m < 2u ? m * 0.5f : Bits.AsFloat((m + 252u) << 22);
        return (w & 8u) != 0 ? -a : a;
    }
}
