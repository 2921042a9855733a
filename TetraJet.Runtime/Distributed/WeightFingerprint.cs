using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Distributed;

/// <summary>
/// An exact, order-independent fingerprint of a floating-point tensor, computed where it lives: frexp splits each
/// element into its significand and exponent exactly, the significand (times 2^53, an integer) into a low 26 and a
/// high 27 bits, and four int64 sums are kept: low parts, high parts, exponents and negative elements. Integer sums
/// do not depend on the order of summation, so two ranks with bit-identical weights get identical fingerprints on any
/// GPU, and a rank whose weights drifted gets another one (but for changes that cancel exactly in all four sums).
/// </summary>
public static class WeightFingerprint
{
    public const int Words = 4;

    /// <summary>The four sums of <paramref name="t"/>, as an int64 tensor [4] on its device.</summary>
    public static Tensor Of(Tensor t)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = t.detach().reshape(-1).to(ScalarType.Float64);
        var (mantissa, exponent) = frexp(x);
        var a = (mantissa.abs() * Math.Pow(2, 53)).to(ScalarType.Int64);
        const long low = (1L << 26) - 1;
        var sums = stack([
            a.bitwise_and(low).sum(), a.bitwise_right_shift(26).sum(),
            exponent.to(ScalarType.Int64).sum(), x.signbit().to(ScalarType.Int64).sum(),
        ]);
        return sums.MoveToOuterDisposeScope();
    }

    /// <summary>The fingerprints of several tensors, one row each: int64 [count, 4] on the first one's device.</summary>
    public static Tensor Of(IEnumerable<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        return stack(tensors.Select(Of).ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>A 64-bit summary of a fingerprint row, for messages.</summary>
    public static ulong Digest(ReadOnlySpan<long> row)
    {
        ulong h = 0xCBF29CE484222325;
        foreach (long v in row) h = (h ^ (ulong)v) * 0x100000001B3;
        return h;
    }
}
