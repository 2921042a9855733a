using TetraJet.Formats;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;

namespace TetraJet.Runtime.Tests;

/// <summary>The known answers and worked examples of ALGORITHMS.md §6–7, against the scalar reference.</summary>
public class SpecExampleTests
{
    [Fact]
    public void Philox_matches_Random123_known_answers()
    {
        Philox.Block(0, 0, 0, 0, 0, 0, out var a0, out var a1, out var a2, out var a3);
        Assert.Equal(new uint[] { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }, new[] { a0, a1, a2, a3 });
        const uint F = 0xFFFFFFFF;
        Philox.Block(F, F, F, F, F, F, out var b0, out var b1, out var b2, out var b3);
        Assert.Equal(new uint[] { 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd }, new[] { b0, b1, b2, b3 });
    }

    [Fact]
    public void Uniforms_for_seed_42_stream_7()
    {
        float[] expected = [0.40598196f, 0.89581394f, 0.42380965f, 0.33379507f];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], Philox.Uniform(42, 7, i), 7);
    }

    [Fact]
    public void Hadamard_signs_for_seed_42_stream_7()
    {
        uint r = Philox.HadamardSigns(42, 7);
        var signs = string.Concat(Enumerable.Range(0, 16).Select(j => ((r >> j) & 1) != 0 ? '-' : '+'));
        Assert.Equal("++-+-++-+--++-+-", signs);
    }

    [Fact]
    public void Hadamard_worked_example()
    {
        var x = Enumerable.Range(1, 16).Select(i => (float)i).ToArray();
        Hadamard.Transform16(x, Philox.HadamardSigns(42, 7));
        Assert.Equal(new[] { 0.5f, 12.5f, 0.5f, 4.5f, 1.5f, -18.5f, -0.5f, 19.5f, 1.5f, -14.5f, 1.5f, -14.5f, 0.5f, 12.5f, 0.5f, -3.5f }, x);
    }

    static float[] QuantizeBlock32(float[] head, QuantSpec spec)
    {
        var x = new float[32];
        head.CopyTo(x, 0);
        var y = new float[32];
        ReferenceQuantizer.Quantize(x, y, 1, 32, BlockAxis.Last, spec);
        return y[..head.Length];
    }

    [Fact]
    public void Mxfp4_tetrajet_rule_worked_example()
    {
        var y = QuantizeBlock32([3, -1.25f, 0.75f, 0.2f, 2.5f, -5, 0, 1.75f], new QuantSpec(QuantFormat.MXFP4));
        Assert.Equal(new float[] { 3, -1, 1, 0, 2, -4, 0, 2 }, y);
    }

    [Fact]
    public void Seven_rounds_to_8_under_tetrajet_and_clips_to_6_under_ocp()
    {
        float[] block = [7, -1.25f, 0.75f, 0.2f, 2.5f, -5, 0, 1.75f];
        Assert.Equal(8f, QuantizeBlock32(block, new QuantSpec(QuantFormat.MXFP4))[0]);
        Assert.Equal(6f, QuantizeBlock32(block, new QuantSpec(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp))[0]);
    }

    [Theory]
    [InlineData(0.3f, 0.3125f)]
    [InlineData(500f, 448f)]
    [InlineData(0.0009765625f, 0f)]   // 2^-10: half the smallest subnormal, tie to even → 0
    [InlineData(17f, 16f)]
    [InlineData(19f, 20f)]
    [InlineData(-0.3f, -0.3125f)]
    public void E4M3_worked_examples(float x, float expected) => Assert.Equal(expected, E4M3.Round(x));

    [Theory]
    [InlineData(0.25f, 0f)]
    [InlineData(0.75f, 1f)]
    [InlineData(1.25f, 1f)]
    [InlineData(1.75f, 2f)]
    [InlineData(2.5f, 2f)]
    [InlineData(3.5f, 4f)]
    [InlineData(5f, 4f)]
    [InlineData(5.0001f, 6f)]
    [InlineData(100f, 6f)]
    [InlineData(-2.5f, -2f)]
    public void E2M1_ties_go_to_the_even_code(float v, float expected) => Assert.Equal(expected, E2M1.RoundNearest(v));

    [Fact]
    public void Q_ema_worked_example()
    {
        // Block amax 6 → s = 0; v = 0.3 lies between 0 and 0.5; the EMA decides.
        float[] x = new float[32], ema = new float[32], y = new float[32];
        x[0] = 0.3f; x[1] = 6f; ema[1] = 6f;
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.EmaGuided);
        ema[0] = 0.26f;
        ReferenceQuantizer.Quantize(x, y, 1, 32, BlockAxis.Last, spec, ema: ema);
        Assert.Equal(0.5f, y[0]);
        ema[0] = 0.24f;
        ReferenceQuantizer.Quantize(x, y, 1, 32, BlockAxis.Last, spec, ema: ema);
        Assert.Equal(0f, y[0]);
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, 32)]
    [InlineData(QuantFormat.NVFP4, 128)]
    [InlineData(QuantFormat.NVFP4Tensor, 16)]
    [InlineData(QuantFormat.MXFP8, 32)]
    public void A_block_with_NaN_is_all_NaN_and_a_zero_block_is_zero(QuantFormat format, int block)
    {
        var x = new float[2 * block];
        for (int i = 0; i < x.Length; i++) x[i] = i * 0.01f;
        for (int i = block; i < 2 * block; i++) x[i] = 0;
        x[3] = float.NaN;
        var y = new float[x.Length];
        ReferenceQuantizer.Quantize(x, y, 1, 2 * block, BlockAxis.Last, new QuantSpec(format));
        Assert.All(y[..block], v => Assert.True(float.IsNaN(v)));
        if (format == QuantFormat.NVFP4Tensor) Assert.All(y, v => Assert.True(float.IsNaN(v)));   // one outer scale per tensor
        else Assert.All(y[block..], v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Nvfp4_double_block_follows_the_spec_steps()
    {
        var rng = new Random(5);
        var x = Enumerable.Range(0, 128).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var y = new float[128];
        ReferenceQuantizer.Quantize(x, y, 1, 128, BlockAxis.Last, new QuantSpec(QuantFormat.NVFP4));
        float amaxO = x.Max(MathF.Abs);
        float so = amaxO / 2688f, d = so * 6f;
        for (int b = 0; b < 8; b++)
        {
            float amaxI = x.Skip(16 * b).Take(16).Max(MathF.Abs);
            float scale = E4M3.Round(amaxI / d) * so;
            for (int k = 0; k < 16; k++)
                Assert.Equal(E2M1.RoundNearest(x[16 * b + k] / scale) * scale, y[16 * b + k]);
        }
    }

    [Fact]
    public void Scale_rule_is_exact_at_powers_of_two_times_six()
    {
        // amax exactly 6·2^k → s = k; one ulp above → s = k + 1.
        for (int k = -20; k <= 20; k++)
        {
            float at = 6f * MathF.Pow(2, k);
            Assert.Equal(k, E8M0.TetraJetExponent(at));
            Assert.Equal(k + 1, E8M0.TetraJetExponent(MathF.BitIncrement(at)));
            Assert.Equal(k, E8M0.TetraJetExponent(MathF.BitDecrement(at)) == k ? k : -999);
        }
    }

    [Fact]
    public void Features_axis_not_a_block_multiple_is_a_clear_error()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            ReferenceQuantizer.Quantize(new float[40], new float[40], 1, 40, BlockAxis.Last, new QuantSpec(QuantFormat.MXFP4)));
        Assert.Contains("40", ex.Message);
        Assert.Contains("32", ex.Message);
    }
}
