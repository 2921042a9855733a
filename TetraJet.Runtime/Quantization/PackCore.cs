using System.Runtime.CompilerServices;
using TetraJet.Formats;

namespace TetraJet.Quantization;

/// <summary>
/// The block-level steps of the FP4 and MXFP8 storage forms as the CPU loop (<see cref="Cpu.CpuPacking"/>) computes
/// them after the quantizer: scale bytes from a block's amax bits, exactly as the quantizer chose the scale, and element
/// codes (4-bit E2M1, or E4M3 bytes) from dequantized values. Reference: <see cref="Reference.ReferenceQuantizer.QuantizePacked"/>.
/// </summary>
public static class PackCore
{
    const uint NonFiniteBits = 0x7F800000u;

    /// <summary>MXFP4: the E8M0 byte of a block with these amax bits (0xFF if non-finite; exponent −127 for a zero block) and 2^-s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte MxScale(uint amaxBits, ScaleRule rule, out float inverse)
    {
        inverse = 0f;
        if (amaxBits >= NonFiniteBits) return E8M0.NaN;
        int s = amaxBits == 0 ? E8M0.MinExponent : ScalarCore.MxExponent(Bits.AsFloat(amaxBits), false, rule);
        inverse = Bits.Pow2(-s);
        return E8M0.Encode(s);
    }

    /// <summary>MXFP8: the E8M0 byte of a block with these amax bits (round-up rule, §3.4; 0xFF if non-finite) and 2^-s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Mx8Scale(uint amaxBits, out float inverse)
    {
        inverse = 0f;
        if (amaxBits >= NonFiniteBits) return E8M0.NaN;
        int s = amaxBits == 0 ? E8M0.MinExponent : ScalarCore.MxExponent(Bits.AsFloat(amaxBits), true, ScaleRule.TetraJet);
        inverse = Bits.Pow2(-s);
        return E8M0.Encode(s);
    }

    /// <summary>
    /// E4M3 byte of an MXFP8 value: the nearest E4M3 grid point of q·2^-s (exact, so q's own grid value), q's sign.
    /// Rounding rather than encoding keeps the code right where q·2^s overflowed to ±Inf (it saturates to 448, which
    /// decodes to the same Inf) or where a bfloat16 q lost bits of a subnormal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Mx8Code(float q, float inverse) => E4M3.Encode(E4M3.Round(q * inverse));

    /// <summary>NVFP4 (TetraJet-v2): the E4M3 byte of an inner block, the outer scale s_o and the product scale s_i·s_o.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte NvScale(uint outerBits, uint innerBits, out float outer, out float scale)
    {
        if (outerBits >= NonFiniteBits) { outer = float.NaN; scale = float.NaN; return 0x7F; }
        outer = ScalarCore.NvOuterScale(Bits.AsFloat(outerBits));
        float si = outer == 0f ? 0f : ScalarCore.NvInnerScale(Bits.AsFloat(innerBits), outer);
        scale = si * outer;
        return E4M3.Encode(si);
    }

    /// <summary>Code of an MX value: nearest grid magnitude of q·2^-s (exact), q's sign.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MxCode(float q, float inverse) => NearestCode(Bits.Abs(q * inverse)) | Sign(q);

    /// <summary>Code of an NVFP4 value: nearest grid magnitude of q / scale, q's sign (a zero scale holds zeros).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NvCode(float q, float scale) => (scale == 0f ? 0 : NearestCode(Bits.Abs(q / scale))) | Sign(q);

    /// <summary>
    /// <see cref="E2M1.NearestCode"/> without branches: the number of midpoints below a, ties to the even code.
    /// Codes of random data defeat branch prediction, and the nested comparisons cost more than the memory traffic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestCode(float a) =>
        (a > 0.25f ? 1 : 0) + (a >= 0.75f ? 1 : 0) + (a > 1.25f ? 1 : 0) + (a >= 1.75f ? 1 : 0)
        + (a > 2.5f ? 1 : 0) + (a >= 3.5f ? 1 : 0) + (a > 5f ? 1 : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Sign(float q) => (Bits.AsUInt(q) & 0x80000000u) != 0 ? 8 : 0;
}
