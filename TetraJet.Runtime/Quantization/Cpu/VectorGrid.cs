using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The element roundings of <see cref="Formats.E2M1"/>, <see cref="Formats.E4M3"/> and <see cref="Formats.E4M3Directed"/>
/// on 8 lanes at once, bit for bit: grid values are built from sums of exact constants selected by compares,
/// so there is no table lookup and no per-lane branch.
/// </summary>
internal static class VectorGrid
{
    const uint SignBit = 0x80000000u;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Abs(Vector256<float> v) => (v.AsUInt32() & Vector256.Create(~SignBit)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WithSignOf(Vector256<float> magnitude, Vector256<float> sign) =>
        (magnitude.AsUInt32() | (sign.AsUInt32() & Vector256.Create(SignBit))).AsSingle();

    /// <summary>
    /// E2M1 round to nearest, ties to the even code (= the even mantissa bit), as <see cref="Formats.E2M1.RoundNearest"/>:
    /// from 1 up, RNE to one fraction bit on the FP32 bits; below 1, the fixed step 0.5 (RNE of 2a, halved); then ≤ 6.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp4Nearest(Vector256<float> v)
    {
        var a = Abs(v);
        var mag = a.AsUInt32();
        var normal = ((mag + Vector256.Create(0x1FFFFFu) + ((mag >> 22) & Vector256<uint>.One)) & Vector256.Create(0xFFC00000u)).AsSingle();
        var sub = Vector256.Round(a + a) * Vector256.Create(0.5f);
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256<float>.One), normal, sub);
        return WithSignOf(Vector256.MinNative(r, Vector256.Create(6f)), v);
    }

    /// <summary>
    /// a = min(|v|, 6), lo = the largest grid value ≤ a, step = hi − lo (a power of two; at a = 6, lo = 6 and
    /// (a − lo)/step = 0). From 1 up, lo keeps one fraction bit of a and step is half of a's binade; below 1, step 0.5.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Fp4Bracket(Vector256<float> v, out Vector256<float> a, out Vector256<float> lo, out Vector256<float> step)
    {
        a = Vector256.MinNative(Abs(v), Vector256.Create(6f));
        var normal = Vector256.GreaterThanOrEqual(a, Vector256<float>.One);
        var bits = a.AsUInt32();
        lo = Vector256.ConditionalSelect(normal, (bits & Vector256.Create(0xFFC00000u)).AsSingle(),
            Vector256.Floor(a + a) * Vector256.Create(0.5f));
        step = Vector256.ConditionalSelect(normal, (bits & Vector256.Create(0x7F800000u)).AsSingle() * Vector256.Create(0.5f),
            Vector256.Create(0.5f));
    }

    /// <summary>E2M1 stochastic rounding: hi if u &lt; (a − lo)/(hi − lo). At a = 6 the probability is 0, so 6 stays 6.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp4Stochastic(Vector256<float> v, Vector256<float> u)
    {
        Fp4Bracket(v, out var a, out var lo, out var step);
        var p = (a - lo) / step;
        return WithSignOf(Vector256.ConditionalSelect(Vector256.LessThan(u, p), lo + step, lo), v);
    }

    /// <summary>E2M1 Q-EMA: hi if sign(v)·e ≥ (lo + hi)/2 (never above 6).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp4EmaGuided(Vector256<float> v, Vector256<float> e)
    {
        Fp4Bracket(v, out var a, out var lo, out var step);
        var hi = lo + step;
        var se = (e.AsUInt32() ^ (v.AsUInt32() & Vector256.Create(SignBit))).AsSingle();
        var up = Vector256.GreaterThanOrEqual(se, (lo + hi) * Vector256.Create(0.5f)) & Vector256.LessThan(a, Vector256.Create(6f));
        return WithSignOf(Vector256.ConditionalSelect(up, hi, lo), v);
    }

    /// <summary>E4M3 RNE with satfinite, as <see cref="Formats.E4M3.Round"/> for finite and infinite inputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp8Nearest(Vector256<float> v)
    {
        var a = Abs(v);
        var mag = a.AsUInt32();
        var normal = ((mag + Vector256.Create(0x7FFFFu) + ((mag >> 20) & Vector256<uint>.One)) & Vector256.Create(0xFFF00000u)).AsSingle();
        normal = Vector256.MinNative(normal, Vector256.Create(448f));
        var sub = Vector256.Round(a * Vector256.Create(512f)) * Vector256.Create(0.001953125f);
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(0.015625f)), normal, sub);
        r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(448f)), Vector256.Create(448f), r);
        return WithSignOf(r, v);
    }

    /// <summary>The E4M3 grid neighbours of a (as <see cref="Formats.E4M3Directed.Bracket"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Fp8Bracket(Vector256<float> a, out Vector256<float> lo, out Vector256<float> hi)
    {
        var t = a.AsUInt32() & Vector256.Create(0xFFF00000u);
        var i = Vector256.Floor(a * Vector256.Create(512f));
        var normal = Vector256.GreaterThanOrEqual(a, Vector256.Create(0.015625f));
        lo = Vector256.ConditionalSelect(normal, t.AsSingle(), i * Vector256.Create(0.001953125f));
        hi = Vector256.ConditionalSelect(normal, (t + Vector256.Create(0x100000u)).AsSingle(), (i + Vector256<float>.One) * Vector256.Create(0.001953125f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp8Stochastic(Vector256<float> v, Vector256<float> u)
    {
        var a = Abs(v);
        Fp8Bracket(a, out var lo, out var hi);
        var p = (a - lo) / (hi - lo);
        var r = Vector256.ConditionalSelect(Vector256.LessThan(u, p), hi, lo);
        r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(448f)), Vector256.Create(448f), r);
        return WithSignOf(r, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fp8EmaGuided(Vector256<float> v, Vector256<float> e)
    {
        var a = Abs(v);
        Fp8Bracket(a, out var lo, out var hi);
        var se = (e.AsUInt32() ^ (v.AsUInt32() & Vector256.Create(SignBit))).AsSingle();
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(se, (lo + hi) * Vector256.Create(0.5f)), hi, lo);
        r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(448f)), Vector256.Create(448f), r);
        return WithSignOf(r, v);
    }

    /// <summary>Largest |x| bit pattern of 8 lanes as an int vector: finite values order like their bits; ≥ 0x7F800000 means NaN/Inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> AbsBits(Vector256<float> x) => (x.AsInt32() & Vector256.Create(0x7FFFFFFF));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HorizontalMax(Vector256<int> m)
    {
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(1, 0, 3, 2)));
        return h.ToScalar();
    }
}
