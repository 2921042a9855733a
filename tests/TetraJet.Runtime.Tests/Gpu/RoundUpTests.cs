using System.Numerics;
using TetraJet.Formats;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The SR kernels' ceiling form (<see cref="Fp4Grid.StochasticSteps{TUp}"/>, which CUDA runs with <c>fma.rp</c> and
/// <c>add.rp</c>): first the CPU's rounding up (<see cref="DotNetRoundUp"/>) against exact integer arithmetic, then the
/// steps with it against ALGORITHMS.md §2's SR at the uniforms where the decision turns.
/// </summary>
public class RoundUpTests
{
    /// <summary>Every float and every product of two floats is an integer multiple of 2^-300.</summary>
    static BigInteger Exact(double x)
    {
        if (x == 0) return BigInteger.Zero;
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF);
        long m = bits & 0xFFFFFFFFFFFFFL;
        if (e == 0) e = 1; else m |= 1L << 52;
        int shift = e - 1075 + 300;
        var v = new BigInteger(m) << shift;
        return x < 0 ? -v : v;
    }

    /// <summary>r is the smallest float at or above the exact value.</summary>
    static void AssertUp(BigInteger exact, float r, string what)
    {
        Assert.True(Exact(r) >= exact, $"{what}: {r:R} is below the exact result");
        float below = MathF.BitDecrement(r);
        Assert.True(Exact(below) < exact, $"{what}: {below:R} is also at or above the exact result, not {r:R}");
    }

    static float RandomFloat(Random rng, int lo, int hi) =>
        Bits.AsFloat((uint)(rng.Next(lo, hi + 1) + 127) << 23 | (uint)rng.Next(1 << 23) | (rng.Next(2) == 0 ? 0u : 0x80000000u));

    [Fact]
    public void Rounding_up_gives_the_smallest_float_at_or_above_the_exact_sum_and_fma()
    {
        var rng = new Random(21);
        var up = default(DotNetRoundUp);
        for (int k = 0; k < 200_000; k++)
        {
            // Close exponents (cancellation, carries) and far ones (sticky bits), subnormals included.
            int spread = k % 3 == 0 ? 60 : 4;
            float a = RandomFloat(rng, -20, 20), b = RandomFloat(rng, -20, 20);
            float c = RandomFloat(rng, Math.Max(-149 + 23, -20 - spread), 20 + spread);
            if (k % 7 == 0) c = Bits.AsFloat((uint)rng.Next(1, 1 << 23));
            AssertUp(Exact(a) + Exact(c), up.Add(a, c), $"{a:R} + {c:R}");
            AssertUp(Exact((double)a * b) + Exact(c), up.Fma(a, b, c), $"{a:R}·{b:R} + {c:R}");
        }
        // An exact result is itself, an exact zero is +0.
        Assert.Equal(Bits.AsUInt(3f), Bits.AsUInt(up.Add(1f, 2f)));
        Assert.Equal(0u, Bits.AsUInt(up.Fma(-0.5f, 2f, 1f)));
        Assert.Equal(0u, Bits.AsUInt(up.Add(-1.5f, 1.5f)));
    }

    [Fact]
    public void Ceiling_SR_steps_match_the_reference_at_each_threshold_and_next_to_it()
    {
        // u < p with p = (a − lo)/(hi − lo): the decision turns at the multiples of 2^-24 next to p. Values over the whole
        // range a kernel meets (tiny, each binade of the grid, saturation), uniforms at floor(p), one step either side.
        var rng = new Random(22);
        float[] grid = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];
        const float Step = 1f / 16777216f;
        int checkedCount = 0;
        for (int k = 0; k < 1_000_000; k++)
        {
            float v = k % 4 == 0 ? RandomFloat(rng, -40, 2) : Bits.AsFloat((uint)rng.Next(0x40E00000) | (rng.Next(2) == 0 ? 0u : 0x80000000u));
            float a = Math.Min(Math.Abs(v), 6f);
            int j = Array.FindLastIndex(grid, g => g <= a);
            if (j == grid.Length - 1) continue;
            double p = (a - grid[j]) / (grid[j + 1] - grid[j]);
            float floor = (float)(Math.Floor(p * 16777216.0) / 16777216.0);
            foreach (float u in new[] { floor - Step, floor, floor + Step })
                if (u >= 0 && u < 1)
                {
                    float expected = E2M1.RoundStochastic(v, u), got = Fp4Grid.StochasticSteps<DotNetRoundUp>(v, u * KernelMath.TicksPerUnit);
                    Assert.True(Bits.AsUInt(expected) == Bits.AsUInt(got), $"v {v:R}, u {u:R}: reference {expected:R}, steps {got:R}");
                    checkedCount++;
                }
        }
        Assert.True(checkedCount > 2_000_000);
    }
}
