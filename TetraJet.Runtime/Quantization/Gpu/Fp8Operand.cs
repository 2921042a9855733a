using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// MXFP4 values as FP8 GEMM operands (HOPPER.md, "Exactness facts"). Along the GEMM's reduction axis every 128 consecutive
/// elements form a group with one FP32 scale 2^(s_max − 6), s_max the largest E8M0 block exponent among the group's
/// non-zero, finite blocks. An element g·2^s (g on the E2M1 grid) is then exactly the E4M3 value g·2^(s − s_max + 6)
/// times the group scale iff s ≥ s_max − 14: E2M1 values times 2^e are E4M3 values for −8 ≤ e ≤ 6 (6·2^6 = 384 ≤ 448,
/// 0.5·2^-8 = 2^-9 the smallest subnormal). A group whose live blocks span more than 14 binades is "broken": its row
/// is flagged and computed exactly elsewhere (<see cref="Fp8PatchKernels"/>), so nothing is ever silently rounded.
/// </summary>
/// <remarks>
/// Layouts (what the GEMM interop consumes): codes one E4M3 byte per element in the operand's [rows, reduction] layout;
/// scales FP32 group-major, <c>scales8[g · rows + r]</c>; a group with no live block has scale 1. Codes: a non-finite
/// block is all 0x7F (NaN, so NaN reaches the GEMM's output as the reference's NaN would), a zero block all 0x00, a
/// block below the bound (only in a flagged row) 0 with the element's sign. Flags of an operand of L lines, int32
/// [1 + 2L] (<see cref="FlagLength"/>): <c>flags[0]</c> the count, <c>flags[1 + line]</c> the line's mark, then the
/// list, <c>flags[1 + L + i]</c> for i below the count: each flagged line once (the first group to break claims it by
/// its mark, <see cref="Claim"/>), so each line is re-quantized and recomputed once however many of its groups broke,
/// and whether a line is flagged is one load (<see cref="Listed"/>). The caller zeroes the count and the marks (the
/// first 1 + L entries). The side copy holds the flagged rows' exact quantized values Q(x) in the operand's dtype, in
/// the codes' layout; other rows of it are left untouched.
/// </remarks>
public static class Fp8Operand
{
    /// <summary>Elements per group along the reduction axis (cuBLASLt's 1×128 scaling block).</summary>
    public const int GroupLength = 128;

    /// <summary>The largest span of block exponents (s_max − s) that E4M3 codes times a group scale represent exactly.</summary>
    public const int MaxSpan = 14;

    /// <summary>The code of every element of a non-finite block.</summary>
    public const byte NaNCode = 0x7F;

    /// <summary>Stand-ins for "no live block" in the group's max and min reductions (far outside E8M0's range).</summary>
    public const int NoneMax = -1024, NoneMin = 1024;

    /// <summary>A non-zero, finite block: the only kind that takes part in the group's exponent span.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Live(uint amax) => amax != 0 && amax < NonFiniteBits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LiveMax(uint amax, int s) => Live(amax) ? s : NoneMax;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LiveMin(uint amax, int s) => Live(amax) ? s : NoneMin;

    /// <summary>The group scale 2^(s_max − 6), or 1 for a group without a live block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GroupScale(int sMax) => sMax == NoneMax ? 1f : Bits.Pow2(sMax - 6);

    /// <summary>Whether the live blocks of a group span more than <see cref="MaxSpan"/> binades (never for fewer than two live blocks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Broken(int sMax, int sMin) => sMax - sMin > MaxSpan;

    /// <summary>
    /// The E4M3 code of g·2^shift, g an E2M1 grid value and −8 ≤ shift ≤ 6 (exact: the product is an E4M3 value);
    /// below that reach the element is written as a signed zero (its row is flagged).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Code(float g, int shift) => Encode(g, Factor(shift));

    /// <summary>2^shift where the block is within the bound (shift ≥ −8), else 0 (its elements become signed zeros).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Factor(int shift) => shift < 6 - MaxSpan ? 0f : Bits.Pow2(shift);

    /// <summary>
    /// The E4M3 code of g·<paramref name="factor"/> (an exact E4M3 value, or 0): normal (w ≥ 2^-6) it is the biased
    /// exponent − 120 and the top 3 fraction bits; below, w is a multiple of 2^-9 and w + 2^-6 (exact) carries w / 2^-9
    /// in those bits. Integer steps and one add: no float-to-integer conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Encode(float g, float factor)
    {
        uint sign = (Bits.AsUInt(g) >> 24) & 0x80u;
        float w = Bits.Abs(g) * factor;
        bool normal = w >= 0.015625f;
        return sign | ((Bits.AsUInt(normal ? w : w + 0.015625f) >> 20) - (normal ? 960u : 968u));
    }

    /// <summary>The value of an E4M3 code (reference: E4M3.Decode), without branches.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Value(uint code)
    {
        uint e = (code >> 3) & 15u, m = code & 7u;
        float a = e == 0 ? m * 0.001953125f : Bits.AsFloat((e + 120u) << 23 | m << 20);
        a = (code & 0x7Fu) == 0x7Fu ? float.NaN : a;
        return (code & 0x80u) != 0 ? -a : a;
    }

    /// <summary>
    /// The codes of four values that are E4M3 values or signed zeros (element k in byte k), such as g·<see cref="Factor"/>;
    /// a NaN gives some byte in its own place (its caller writes the NaN code).
    /// On CUDA two <c>cvt.rn.satfinite.e4m3x2.f32</c> (one instruction per pair; sm_90 and newer, the GPUs with these FP8
    /// GEMMs: <see cref="PtxCompiler"/> targets the PTX accordingly): the values are exact, so its rounding never acts
    /// and the codes are <see cref="Encode"/>'s, which the other accelerators run.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Pack4(float w0, float w1, float w2, float w3)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> codes = default;
            Input<float> a = w0, b = w1, c = w2, d = w3;
            // The first source of a cvt goes to the upper byte of its pair.
            CudaAsm.EmitRef("{\n\t.reg .b16 lo, hi;\n\tcvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\n\tcvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;"
                + "\n\tmov.b32 %0, {lo, hi};\n\t}", ref codes, ref a, ref b, ref c, ref d);
            return codes.Value;
        }
        // Masked: callers pass NaN for elements whose codes they replace, and Encode's result for NaN is wider than a byte.
        return (Encode(w0, 1f) & 0xFFu) | (Encode(w1, 1f) & 0xFFu) << 8 | (Encode(w2, 1f) & 0xFFu) << 16 | Encode(w3, 1f) << 24;
    }

    /// <summary>
    /// The codes of 8 elements of one MX block (grid values <paramref name="g"/>, amax bits, exponent s) in a group with
    /// largest live exponent <paramref name="sMax"/>, element k in byte k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Codes(Vec8 g, uint amax, int s, int sMax)
    {
        if (amax >= NonFiniteBits) return 0x7F7F7F7F7F7F7F7Ful;
        if (amax == 0) return 0ul;
        float f = Factor(s - sMax + 6);
        return Pack4(g.V0 * f, g.V1 * f, g.V2 * f, g.V3 * f) | (ulong)Pack4(g.V4 * f, g.V5 * f, g.V6 * f, g.V7 * f) << 32;
    }

    /// <summary>
    /// <see cref="BlockMath.Fp4Codes"/> through <see cref="Pack4"/>: E4M3(g·2^-6) is four times g's E2M1 code with the
    /// sign on top (0.5·2^-6 = 2^-7 is the subnormal code 4, 2^-6 the smallest normal, 8, and each grid step above adds
    /// 4 to the code), so a multiply, half a conversion and a few bit moves per element replace the code's compares.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Fp4Codes(Vec8 g, bool nan)
    {
        const float Down = 0.015625f;
        uint lo = Pack4(g.V0 * Down, g.V1 * Down, g.V2 * Down, g.V3 * Down), hi = Pack4(g.V4 * Down, g.V5 * Down, g.V6 * Down, g.V7 * Down);
        // Each byte 4m + 128·sign to the nibble m + 8·sign, then each pair of bytes to one byte (bytes 0 and 2 hold the result).
        lo = (lo >> 2 & 0x07070707u) | (lo >> 4 & 0x08080808u);
        hi = (hi >> 2 & 0x07070707u) | (hi >> 4 & 0x08080808u);
        lo = (lo | lo >> 4) & 0x00FF00FFu;
        hi = (hi | hi >> 4) & 0x00FF00FFu;
        uint codes = Permute(lo, hi, 0x6420u);
        return nan ? 0u : codes;
    }

    /// <summary>
    /// PTX <c>prmt.b32</c> in its default mode with selectors below 8 (every use here): byte k of the result is byte
    /// (nibble k of <paramref name="selectors"/>) of the eight bytes of <paramref name="a"/> then <paramref name="b"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Permute(uint a, uint b, uint selectors)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> d = default;
            Input<uint> x = a, y = b, c = selectors;
            CudaAsm.EmitRef("prmt.b32 %0, %1, %2, %3;", ref d, ref x, ref y, ref c);
            return d.Value;
        }
        ulong bytes = a | (ulong)b << 32;
        return (uint)(bytes >> (int)((selectors & 7u) * 8) & 0xFF) | (uint)(bytes >> (int)((selectors >> 4 & 7u) * 8) & 0xFF) << 8
            | (uint)(bytes >> (int)((selectors >> 8 & 7u) * 8) & 0xFF) << 16 | (uint)(bytes >> (int)((selectors >> 12 & 7u) * 8) & 0xFF) << 24;
    }

    /// <summary>Length of the flag buffer of an operand of <paramref name="lines"/> lines: count, marks, list.</summary>
    public static long FlagLength(long lines) => 1 + 2 * lines;

    /// <summary>
    /// Flags line <paramref name="index"/>: true for the one caller that claims it (its mark was clear; that caller
    /// appends it to the list and writes its side copy), false if it was flagged already.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Claim(ArrayView<int> flags, int index)
    {
        if (Atomic.Exchange(ref flags[1 + index], 1) != 0) return false;
        int slot = Atomic.Add(ref flags[0], 1);
        flags[1 + Lines(flags) + slot] = index;
        return true;
    }

    /// <summary>The number of lines of the operand a flag buffer belongs to.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Lines(ArrayView<int> flags) => (int)((flags.Length - 1) / 2);

    /// <summary>The number of flagged lines (0 for an empty view).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Count(ArrayView<int> flags) => flags.Length < 1 ? 0 : flags[0];

    /// <summary>Entry <paramref name="i"/> (below the count) of the list: a flagged line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Entry(ArrayView<int> flags, int i) => flags[1 + Lines(flags) + i];

    /// <summary>Whether line <paramref name="index"/> is flagged.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Listed(ArrayView<int> flags, int index) => flags[1 + index] != 0;

    /// <summary>The flagged lines of a flag buffer copied to the host, in list order.</summary>
    public static int[] Entries(ReadOnlySpan<int> buffer)
    {
        int lines = (buffer.Length - 1) / 2;
        return buffer.Slice(1 + lines, Math.Min(buffer[0], lines)).ToArray();
    }

    /// <summary>A flag buffer for <paramref name="lines"/> lines listing <paramref name="entries"/> (distinct, each below lines), as the kernels write one.</summary>
    public static int[] Buffer(int lines, IReadOnlyList<int> entries)
    {
        var buffer = new int[FlagLength(lines)];
        buffer[0] = entries.Count;
        for (int i = 0; i < entries.Count; i++)
        {
            if (buffer[1 + entries[i]] != 0) throw new ArgumentException($"line {entries[i]} is listed twice");
            buffer[1 + entries[i]] = 1;
            buffer[1 + lines + i] = entries[i];
        }
        return buffer;
    }
}
