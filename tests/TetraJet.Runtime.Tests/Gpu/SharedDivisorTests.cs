using TetraJet.Formats;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The NVFP4 kernels' quotients by a shared reciprocal (<see cref="SharedDivisor"/>) against the IEEE division, bit for
/// bit: the correction steps run here with .NET's FMA, the same operations the kernels run with <c>fma.rn.f32</c>.
/// </summary>
public class SharedDivisorTests
{
    static float Steps(float x, float d) => SharedDivisor.Steps<DotNetFma>(x, d, 1f / d);

    static void AssertQuotient(float x, float d)
    {
        float expected = x / d, got = Steps(x, d);
        Assert.True(Bits.AsUInt(expected) == Bits.AsUInt(got),
            $"{x:R} / {d:R}: division {expected:R} (0x{Bits.AsUInt(expected):X8}), steps {got:R} (0x{Bits.AsUInt(got):X8})");
    }

    /// <summary>A float with a random significand and an exponent in [lo, hi], either sign.</summary>
    static float RandomIn(Random rng, int lo, int hi) =>
        Bits.AsFloat((uint)(rng.Next(lo, hi + 1) + 127) << 23 | (uint)rng.Next(1 << 23) | (rng.Next(2) == 0 ? 0u : 0x80000000u));

    [Fact]
    public void Random_quotients_over_the_whole_fast_range_are_the_division()
    {
        var rng = new Random(11);
        for (int k = 0; k < 2_000_000; k++)
            AssertQuotient(RandomIn(rng, -60, 59), MathF.Abs(RandomIn(rng, -60, 59)));
    }

    [Fact]
    public void Quotients_next_to_rounding_midpoints_are_the_division()
    {
        // x = RN(m·d) for a midpoint m between two floats puts x / d within an ulp or so of a tie: where a quotient off
        // by one rounding would show.
        var rng = new Random(12);
        for (int k = 0; k < 1_000_000; k++)
        {
            float d = MathF.Abs(RandomIn(rng, -30, 30));
            double mid = ((1 << 24) + 2 * rng.Next(1 << 23) + 1) * Math.Pow(2, rng.Next(-24, 6) - 24);
            float x = (float)(mid * d);
            AssertQuotient(x, d);
            AssertQuotient(-x, d);
            AssertQuotient(Bits.AsFloat(Bits.AsUInt(x) + 1), d);
            AssertQuotient(Bits.AsFloat(Bits.AsUInt(x) - 1), d);
        }
    }

    [Fact]
    public void Significands_at_the_ends_of_a_binade_and_exact_quotients_are_the_division()
    {
        float[] edges = [1f, 1.5f, 2f, 3f, 6f, BitConverter.UInt32BitsToSingle(0x3FFFFFFFu), BitConverter.UInt32BitsToSingle(0x3F800001u),
            BitConverter.UInt32BitsToSingle(0x3FBFFFFFu), 0.75f, 448f, 1f / 3, 0.1f];
        foreach (int ex in new[] { -60, -59, -31, -1, 0, 1, 29, 58 })
            foreach (int ed in new[] { -60, -59, -7, 0, 3, 59 })
                foreach (float a in edges)
                    foreach (float b in edges)
                    {
                        float x = a * Bits.Pow2(ex), d = b * Bits.Pow2(ed);
                        if (!(InRange(x) && InRange(d))) continue;
                        AssertQuotient(x, d);
                        AssertQuotient(-x, d);
                    }
    }

    static bool InRange(float v) => MathF.Abs(v) >= Bits.Pow2(-60) && MathF.Abs(v) <= Bits.Pow2(60);

    [Fact]
    public void Signed_zeros_keep_their_sign()
    {
        foreach (float d in new[] { Bits.Pow2(-60), 0.3f, 1f, 7f, Bits.Pow2(60) })
        {
            Assert.Equal(0x00000000u, Bits.AsUInt(Steps(0f, d)));
            Assert.Equal(0x80000000u, Bits.AsUInt(Steps(-0f, d)));
        }
    }

    [Fact]
    public void The_range_checks_admit_exactly_the_fast_range()
    {
        float lo = Bits.Pow2(-60), hi = Bits.Pow2(60);
        Assert.True(SharedDivisor.BlockFits(lo, Bits.AsUInt(hi)));
        Assert.True(SharedDivisor.BlockFits(hi, 0));
        Assert.False(SharedDivisor.BlockFits(Bits.AsFloat(Bits.AsUInt(lo) - 1), 0));
        Assert.False(SharedDivisor.BlockFits(Bits.AsFloat(Bits.AsUInt(hi) + 1), 0));
        Assert.False(SharedDivisor.BlockFits(1f, Bits.AsUInt(hi) + 1));
        Assert.False(SharedDivisor.BlockFits(-1f, 0));
        Assert.False(SharedDivisor.BlockFits(0f, 0));
        Assert.False(SharedDivisor.BlockFits(float.NaN, 0));

        Assert.False(SharedDivisor.Tiny(0f));
        Assert.False(SharedDivisor.Tiny(-0f));
        Assert.False(SharedDivisor.Tiny(lo));
        Assert.False(SharedDivisor.Tiny(-lo));
        Assert.True(SharedDivisor.Tiny(Bits.AsFloat(Bits.AsUInt(lo) - 1)));
        Assert.True(SharedDivisor.Tiny(-float.Epsilon));
        Assert.True(SharedDivisor.Tiny(float.Epsilon));
    }

    /// <summary>
    /// The RHT's 1/4 folded into the divisor (<see cref="SharedDivisor.DividePair"/> with quarters): where a block fits
    /// with 4d, the steps on h with 4d and RN(1/4d) give RN(h·0.25) / d, the reference's order; a block that does not fit
    /// (tiny or huge sums, tiny or huge divisors) takes the quarters and then the divisions. Without quarters the pair is
    /// two runs' divisions.
    /// </summary>
    [Fact]
    public void Quotients_of_quarters_are_the_quarter_then_the_division()
    {
        var rng = new Random(13);
        int fast = 0;
        for (int k = 0; k < 500_000; k++)
        {
            float h = RandomIn(rng, -58, 58), d = MathF.Abs(RandomIn(rng, -62, 58)), d4 = d * 4f;
            float expected = h * 0.25f / d;
            if (SharedDivisor.BlockFits(d4, Bits.AsUInt(MathF.Abs(h))) && !SharedDivisor.Tiny(h))
            {
                float got = SharedDivisor.Steps<DotNetFma>(h, d4, 1f / d4);
                Assert.True(Bits.AsUInt(expected) == Bits.AsUInt(got), $"({h:R}·0.25) / {d:R}: {expected:R}, steps with 4d {got:R}");
                fast++;
            }
        }
        Assert.True(fast > 400_000, $"only {fast} quotients in the fast range");
        // Whole blocks through DividePair (the divisions on the CPU), tiny, subnormal, zero and huge sums among them.
        var v = new Vec8 { V0 = 1e-30f, V1 = -3f, V2 = 0f, V3 = -0f, V4 = 5e-39f, V5 = 2.5f, V6 = 1e20f, V7 = -7e-45f };
        var w = new Vec8 { V0 = 3.75f, V1 = -1.25f, V2 = 0f, V3 = -0f, V4 = 6f, V5 = -5.5f, V6 = 0.125f, V7 = 1e-5f };
        foreach (var (lo, hi) in new[] { (v, w), (w, w), (w, v) })
            foreach (bool quarters in new[] { true, false })
                foreach (float d in new[] { 1e-25f, Bits.Pow2(-62), 0.37f, 1.5f, 1e25f, Bits.Pow2(59) })
                {
                    uint amax = Math.Max(lo.AbsMax(), hi.AbsMax());
                    SharedDivisor.DividePair(lo, hi, d, amax, quarters, out var qLo, out var qHi);
                    float f = quarters ? 0.25f : 1f;
                    for (int j = 0; j < 8; j++)
                    {
                        Assert.Equal(Bits.AsUInt(lo.Get(j) * f / d), Bits.AsUInt(qLo.Get(j)));
                        Assert.Equal(Bits.AsUInt(hi.Get(j) * f / d), Bits.AsUInt(qHi.Get(j)));
                    }
                }
    }

    [Fact]
    public void Blocks_outside_the_range_take_the_division()
    {
        // On the CPU the quotients are divisions in both branches; this checks the branch's inputs reach it unchanged.
        var v = new Vec8 { V0 = 1e-30f, V1 = -3f, V2 = 0f, V3 = -0f, V4 = 5e-39f, V5 = 2.5f, V6 = 1e20f, V7 = -1e-20f };
        foreach (float d in new[] { 1e-25f, 0.37f, 1e25f })
        {
            var q = SharedDivisor.Divide(v, d, v.AbsMax());
            Assert.Equal(Bits.AsUInt(v.V4 / d), Bits.AsUInt(q.V4));
            Assert.Equal(Bits.AsUInt(v.V3 / d), Bits.AsUInt(q.V3));
            Assert.Equal(Bits.AsUInt(v.V6 / d), Bits.AsUInt(q.V6));
        }
    }
}
