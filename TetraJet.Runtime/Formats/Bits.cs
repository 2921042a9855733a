using System.Runtime.CompilerServices;

namespace TetraJet.Formats;

/// <summary>Exact bit-level helpers shared by every path (also compiled by ILGPU, hence no BCL intrinsics).</summary>
public static class Bits
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint AsUInt(float x) => ILGPU.Interop.FloatAsInt(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float AsFloat(uint x) => ILGPU.Interop.IntAsFloat(x);

    /// <summary>2^e exactly, for e in [−149, 127] (subnormal powers included).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Pow2(int e) => e >= -126 ? AsFloat((uint)(e + 127) << 23) : AsFloat(1u << (e + 149));

    /// <summary>True for NaN and ±Inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsNonFinite(float x) => (AsUInt(x) & 0x7F800000u) == 0x7F800000u;

    /// <summary>|x| by clearing the sign bit (keeps NaN payloads, never rounds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Abs(float x) => AsFloat(AsUInt(x) & 0x7FFFFFFFu);

    /// <summary>Copies the sign of <paramref name="sign"/> onto the non-negative <paramref name="magnitude"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float WithSignOf(float magnitude, float sign) => AsFloat(AsUInt(magnitude) | (AsUInt(sign) & 0x80000000u));

    /// <summary>
    /// floor(log2 a) and the 23-bit fraction of a's normalised significand, for finite a &gt; 0,
    /// subnormals included. Used for exact scale selection.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Exponent(float a, out uint fraction)
    {
        uint b = AsUInt(a) & 0x7FFFFFFFu;
        int biased = (int)(b >> 23);
        if (biased != 0)
        {
            fraction = b & 0x7FFFFFu;
            return biased - 127;
        }
        // Subnormal: normalise the fraction so that its leading one becomes the implicit bit.
        int e = -126;
        uint f = b & 0x7FFFFFu;
        while ((f & 0x800000u) == 0) { f <<= 1; e--; }
        fraction = f & 0x7FFFFFu;
        return e;
    }
}
