using System.Runtime.CompilerServices;
using ILGPU.Runtime.Cuda;
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
    static float Saturated(float v) => Math.Min(Math.Abs(v), E2M1.Max);

    /// <summary>
    /// 2^e for a ≥ 0 in [2^e, 2^(e+1)), at least 1: the exponent bits alone. The grid's step around a is half of it
    /// (0.5 below 2, 2^(e−1) above), and the constants below are exact multiples of it: float multiplies (the FMA pipe)
    /// rather than integer steps on the exponent (the integer pipe, which the Philox rounds already load).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Binade(float a) => Bits.AsFloat(Math.Max(Bits.AsUInt(a) & 0x7F800000u, 0x3F800000u));

    /// <summary>M / 2^e with M = 1.5·2^23·step (step = 2^e / 2), so that the ulp of a + M is the step.</summary>
    const float Magic = 6291456f;

    /// <summary>Reference: E2M1.RoundNearest. The grid's step around a = min(|v|, 6) is 0.5 below 2 and 2^(e−1) in
    /// [2^e, 2^(e+1)) above, and the even multiples of the step are the even codes, so RNE to the grid is RNE to a multiple
    /// of the step: (a + M) − M with M = 1.5·2^23·step, whose sum has the step as its ulp (two FP32 additions, IEEE
    /// round-to-nearest-even; the difference is exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Nearest(float v)
    {
        float a = Saturated(v);
        float m = Binade(a) * Magic;
        float r = (a + m) - m;
        return Bits.WithSignOf(r, v);
    }

    /// <summary>The grid values lo ≤ a &lt; hi around the saturated a = min(|v|, 6) (hi = lo = 6 at 6) and the step.</summary>
    /// <remarks>
    /// From the step alone (as in <see cref="Nearest"/>): a rounded to the nearest multiple of the step, then down to the
    /// multiple at or below a. Two FP32 additions, where selects between the halves below 1 and the fraction bit above
    /// cost twice as many integer instructions.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Bracket(float v, out float lo, out float hi, out float step)
    {
        float a = Saturated(v);
        float binade = Binade(a);
        step = binade * 0.5f;
        float m = binade * Magic;
        float r = (a + m) - m;
        lo = r > a ? r - step : r;
        hi = Math.Min(lo + step, E2M1.Max);
        return a;
    }

    /// <summary>
    /// Reference: E2M1.RoundStochastic, u &lt; (a − lo)/(hi − lo), with the uniform as ticks t = u·2^24
    /// (<see cref="KernelMath.Ticks"/>). On CUDA <see cref="StochasticSteps{TUp}"/> with PTX's rounding up; the CPU
    /// accelerator (whose .NET code has no directed rounding) compares against the bracket. Away from saturation
    /// hi − lo is the step, a power of two, and t·(step·2^-24) = u·step (t an integer below 2^24, step ≥ 0.5) and
    /// a − lo (Sterbenz) are exact, so comparing them is comparing the exact quotient; at 6, a − lo = 0 on both sides.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Stochastic(float v, float ticks)
    {
        if (CudaAsm.IsSupported) return StochasticSteps<PtxRoundUp>(v, ticks);
        float a = Bracket(v, out float lo, out float hi, out float step);
        return Bits.WithSignOf(ticks * (step * TickStep) < a - lo ? hi : lo, v);
    }

    /// <summary>2^-24: a tick's share of the step.</summary>
    const float TickStep = 1f / KernelMath.TicksPerUnit;

    /// <summary>
    /// SR as a ceiling: u &lt; (a − lo)/step ⟺ z = a − u·step &gt; lo, and z lies in (lo − step, a], whose only multiples
    /// of the step are lo and hi (at saturation a = lo = 6 = the top multiple, so z in (4, 6] gives 6): the result is the
    /// smallest multiple of the step at or above z. Both steps round up, which keeps that multiple exactly: z rounded up
    /// stays in (lo − step, multiple], and z + M rounded up (M = 1.5·2^23·step, whose binade's ulp is the step, as in
    /// <see cref="Nearest"/>) is M plus the multiple; the final − M is exact. u·step is formed as ticks times
    /// binade·2^-25 (step·2^-24, the same exact product), so the ticks need no conversion to a uniform. In ptxas 11.8's
    /// SASS five instructions per element fewer than the bracket, the compare and the select (<c>KernelMathTests</c> and
    /// <c>RoundUpTests</c> run these steps with <see cref="DotNetRoundUp"/> over every float below 8 and at the thresholds).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float StochasticSteps<TUp>(float v, float ticks) where TUp : struct, IRoundUp
    {
        var up = default(TUp);
        float a = Saturated(v);
        float binade = Binade(a);
        float m = binade * Magic;
        float z = up.Fma(-ticks, binade * (0.5f * TickStep), a);
        return Bits.WithSignOf(up.Add(z, m) - m, v);
    }

    /// <summary>Reference: E2M1.RoundEmaGuided.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float EmaGuided(float v, float e)
    {
        Bracket(v, out float lo, out float hi, out _);
        float se = (Bits.AsUInt(v) & 0x80000000u) != 0 ? -e : e;
        return Bits.WithSignOf(se >= (lo + hi) * 0.5f ? hi : lo, v);
    }

    /// <summary>Reference: ScalarCore.RoundFp4 with the mode a compile-time constant; the uniform as ticks (<see cref="KernelMath.Ticks"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round<TRound>(float v, float ticks, float e) where TRound : struct, IRoundingMode => default(TRound).Mode switch
    {
        Rounding.Stochastic => Stochastic(v, ticks),
        Rounding.EmaGuided => EmaGuided(v, e),
        _ => Nearest(v),
    };

    /// <summary>
    /// The values of the eight codes of a word (element k in nibble k) times <paramref name="scale"/>: each
    /// <see cref="Decode"/>(w &gt;&gt; 4k) · scale, bit for bit. The inverse of <see cref="BlockMath.Fp4Codes"/>: the magnitude
    /// code put in bits 22..24 and the sign in bit 31 are the grid value times 2^-126 (0.5 the subnormal 2^-127), so a
    /// multiply by 2^126 (exact) restores it: two shifts, a masked OR and a multiply per element, eight instructions fewer
    /// than the compares and selects of <see cref="Decode"/> in ptxas 11.8's SASS.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Decode8(uint w, float scale) => new()
    {
        V0 = Low(w << 22, w << 28) * scale, V1 = Low(w << 18, w << 24) * scale, V2 = Low(w << 14, w << 20) * scale, V3 = Low(w << 10, w << 16) * scale,
        V4 = Low(w << 6, w << 12) * scale, V5 = Low(w << 2, w << 8) * scale, V6 = Low(w >> 2, w << 4) * scale, V7 = Low(w >> 6, w) * scale,
    };

    /// <summary>The grid value whose magnitude code is in bits 22..24 of <paramref name="magnitude"/> and sign in bit 31 of <paramref name="sign"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Low(uint magnitude, uint sign) => Bits.AsFloat((magnitude & 0x01C00000u) | (sign & 0x80000000u)) * 8.50705917E+37f;

    /// <summary>Reference: E2M1.Decode. The value of the 4-bit code in the low bits of <paramref name="w"/> (bit 3 the sign), from bits alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Decode(uint w)
    {
        uint m = w & 7u;
        // Codes 0 and 1 are 0 and 0.5 (0x3F000000); from 2 on, the exponent and fraction bit of (m + 252) << 22.
        uint small = m * 0x3F000000u, large = (m + 252u) << 22;
        uint bits = m < 2u ? small : large;
        return Bits.AsFloat(bits | (w & 8u) << 28);
    }
}
