using System.Runtime.CompilerServices;

namespace TetraJet.Formats;

/// <summary>
/// UE8M0 power-of-two scales (bias 127, 0xFF = NaN) and the three exact rules that choose them (ALGORITHMS.md §3.1, §3.4).
/// Every rule works on the bits of amax, never on a floating-point log2.
/// </summary>
public static class E8M0
{
    public const int MinExponent = -127, MaxExponent = 127;
    public const byte NaN = 0xFF;

    public static byte Encode(int s) => (byte)(s + 127);

    public static float Decode(byte code) => code == NaN ? float.NaN : Bits.Pow2(code - 127);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Clamp(int s) => s < MinExponent ? MinExponent : (s > MaxExponent ? MaxExponent : s);

    /// <summary>TetraJet rule: the smallest s with amax ≤ 6·2^s. amax = m·2^e, m ∈ [1,2): s = e − 2 if m ≤ 1.5, else e − 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TetraJetExponent(float amax)
    {
        int e = Bits.Exponent(amax, out uint f);
        return Clamp(f <= 0x400000u ? e - 2 : e - 1);
    }

    /// <summary>OCP MX rule: s = floor(log2 amax) − 2 (E2M1's largest exponent); larger values saturate.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int OcpExponent(float amax) => Clamp(Bits.Exponent(amax, out _) - 2);

    /// <summary>MXFP8 round-up rule: the smallest s with amax ≤ 448·2^s (448 = 1.75·2^8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Mxfp8Exponent(float amax)
    {
        int e = Bits.Exponent(amax, out uint f);
        return Clamp(f <= 0x600000u ? e - 8 : e - 7);
    }
}
