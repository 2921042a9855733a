using System.Runtime.CompilerServices;
using TetraJet.Formats;

namespace TetraJet.Quantization;

/// <summary>
/// The element- and block-level steps of ALGORITHMS.md §2–3 as small pure functions: the one definition
/// that the scalar reference calls, the SIMD path vectorises and the ILGPU kernels compile.
/// </summary>
public static class ScalarCore
{
    /// <summary>NVFP4: 2688 = 448·6, the largest E4M3 scale times the largest E2M1 value.</summary>
    public const float NvOuterDivisor = 2688f;

    /// <summary>Rounds an already-scaled FP4 value by the given mode. <paramref name="u"/> is SR's uniform, <paramref name="e"/> the scaled EMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundFp4(float v, Rounding rounding, float u, float e) => rounding switch
    {
        Rounding.Stochastic => E2M1.RoundStochastic(v, u),
        Rounding.EmaGuided => E2M1.RoundEmaGuided(v, e),
        _ => E2M1.RoundNearest(v),
    };

    /// <summary>Rounds an already-scaled FP8 (E4M3) value by the given mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundFp8(float v, Rounding rounding, float u, float e) => rounding switch
    {
        Rounding.Stochastic => E4M3Directed.RoundStochastic(v, u),
        Rounding.EmaGuided => E4M3Directed.RoundEmaGuided(v, e),
        _ => E4M3.Round(v),
    };

    /// <summary>The E8M0 exponent of an MX block with the given amax (&gt; 0, finite).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MxExponent(float amax, bool fp8, ScaleRule rule) =>
        fp8 ? E8M0.Mxfp8Exponent(amax) : rule == ScaleRule.Ocp ? E8M0.OcpExponent(amax) : E8M0.TetraJetExponent(amax);

    /// <summary>NVFP4 outer scale s_o = amax_o / 2688 (one FP32 rounding).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvOuterScale(float amaxOuter) => amaxOuter / NvOuterDivisor;

    /// <summary>NVFP4 inner E4M3 scale s_i = E4M3(amax_i / d), d = FP32(s_o·6).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvInnerScale(float amaxInner, float outerScale)
    {
        float d = outerScale * 6f;
        return d == 0f ? 0f : E4M3.Round(amaxInner / d);
    }

    /// <summary>NVFP4 element on the E2M1 grid: round(x / scale), scale = FP32(s_i·s_o); a zero scale gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float NvGrid(float x, float scale, Rounding rounding, float u, float ema) =>
        scale == 0f ? 0f : RoundFp4(x / scale, rounding, u, ema / scale);

    /// <summary>MX element on its grid: q = round(x·2^-s), with an exact power-of-two scaling.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MxGrid(float x, int s, bool fp8, Rounding rounding, float u, float ema)
    {
        float inv = Bits.Pow2(-s);
        float v = x * inv, e = ema * inv;
        return fp8 ? RoundFp8(v, rounding, u, e) : RoundFp4(v, rounding, u, e);
    }
}
