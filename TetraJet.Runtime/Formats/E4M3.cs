using System.Runtime.CompilerServices;

namespace TetraJet.Formats;

/// <summary>FP8 E4M3 ("fn"): bias 7, max 448, min normal 2^-6, subnormal step 2^-9, no Inf, NaN = 0x7F/0xFF.</summary>
public static class E4M3
{
    public const float Max = 448f;

    /// <summary>Round to the E4M3 grid: RNE, saturating to ±448, subnormals kept, below half the smallest subnormal → 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float v)
    {
        uint b = Bits.AsUInt(v);
        uint sign = b & 0x80000000u;
        uint mag = b & 0x7FFFFFFFu;
        if (mag > 0x7F800000u) return v;                        // NaN stays NaN
        float a = Bits.AsFloat(mag);
        float r;
        if (a >= Max) r = Max;                                   // satfinite (Inf included)
        else if (a >= 0.015625f)                                 // normal range [2^-6, 448): keep 3 fraction bits, RNE
        {
            uint rounded = mag + 0x7FFFFu + ((mag >> 20) & 1u);
            r = Bits.AsFloat(rounded & 0xFFF00000u);
            if (r > Max) r = Max;
        }
        else                                                     // subnormal range: multiples of 2^-9, RNE
        {
            float y = a * 512f;                                  // exact: a power-of-two scaling
            int i = (int)y;
            float frac = y - i;                                  // exact
            if (frac > 0.5f || (frac == 0.5f && (i & 1) != 0)) i++;
            r = i * 0.001953125f;                                // i·2^-9, exact
        }
        return Bits.AsFloat(Bits.AsUInt(r) | sign);
    }

    /// <summary>
    /// <see cref="Round"/> of a non-negative value or NaN (a block scale's quotient) without branches, for the kernels:
    /// the normal range's RNE on the bits, the subnormal range's RNE to a multiple of 2^-9 as (a + M) − M with
    /// M = 1.5·2^14 (whose ulp is 2^-9), one select between them and the saturation. Ten instructions where the
    /// branches of <see cref="Round"/> issue about twenty; KernelMathTests compare the two over the non-negative floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundMagnitude(float a)
    {
        uint mag = Bits.AsUInt(a);
        float normal = Bits.AsFloat((mag + 0x7FFFFu + ((mag >> 20) & 1u)) & 0xFFF00000u);
        float subnormal = (a + 24576f) - 24576f;
        // NaN fails the test and stays NaN through the subnormal steps and the saturation's comparison.
        float r = a >= 0.015625f ? normal : subnormal;
        return r > Max ? Max : r;
    }

    /// <summary>Byte code of a value already on the E4M3 grid (sign.eeee.mmm).</summary>
    public static byte Encode(float q)
    {
        uint b = Bits.AsUInt(q);
        byte sign = (byte)((b >> 24) & 0x80);
        float a = Bits.Abs(q);
        if (float.IsNaN(a)) return 0x7F;                           // one NaN code: a NaN's sign carries nothing
        if (a == 0) return sign;
        int e = Bits.Exponent(a, out uint frac);
        if (e < -6) return (byte)(sign | (int)(a * 512f));       // subnormal: mantissa = a / 2^-9
        return (byte)(sign | ((e + 7) << 3) | (int)(frac >> 20));
    }

    /// <summary>Value of an E4M3 byte.</summary>
    public static float Decode(byte code)
    {
        int sign = code & 0x80, exp = (code >> 3) & 0xF, man = code & 7;
        float a;
        if (exp == 0xF && man == 7) a = float.NaN;
        else if (exp == 0) a = man * 0.001953125f;
        else a = Bits.Pow2(exp - 7) * (1f + man / 8f);
        return sign != 0 ? -a : a;
    }
}

/// <summary>Directed roundings onto the E4M3 grid, for stochastic and EMA-guided MXFP8.</summary>
public static class E4M3Directed
{
    /// <summary>The largest grid value ≤ a and the next one above it (a ≥ 0, finite, below 448).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Bracket(float a, out float lo, out float hi)
    {
        if (a >= 0.015625f)
        {
            uint t = Bits.AsUInt(a) & 0xFFF00000u;
            lo = Bits.AsFloat(t);
            hi = Bits.AsFloat(t + 0x100000u);
        }
        else
        {
            int i = (int)(a * 512f);
            lo = i * 0.001953125f;
            hi = (i + 1) * 0.001953125f;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundStochastic(float v, float u)
    {
        float a = Bits.Abs(v);
        if (a >= E4M3.Max) return Bits.WithSignOf(E4M3.Max, v);
        Bracket(a, out float lo, out float hi);
        float p = (a - lo) / (hi - lo);
        return Bits.WithSignOf(u < p ? hi : lo, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundEmaGuided(float v, float e)
    {
        float a = Bits.Abs(v);
        if (a >= E4M3.Max) return Bits.WithSignOf(E4M3.Max, v);
        Bracket(a, out float lo, out float hi);
        float se = (Bits.AsUInt(v) & 0x80000000u) != 0 ? -e : e;
        return Bits.WithSignOf(se >= (lo + hi) * 0.5f ? hi : lo, v);
    }
}
