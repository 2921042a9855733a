using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Reference;
using static TetraJet.Runtime.Tests.QuantizerTestData;

namespace TetraJet.Runtime.Tests;

/// <summary>The SIMD CPU quantizer against the scalar reference, bit for bit, on random and adversarial tensors.</summary>
public class CpuQuantizerTests
{
    public static TheoryData<int, Rounding, BlockAxis, bool> Cases()
    {
        var data = new TheoryData<int, Rounding, BlockAxis, bool>();
        for (int f = 0; f < Specs.Length; f++)
            foreach (var rounding in Enum.GetValues<Rounding>())
                foreach (var axis in Enum.GetValues<BlockAxis>())
                    foreach (bool pad in new[] { false, true })
                        if (!(Specs[f].Tile16 && pad)) data.Add(f, rounding, axis, pad);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_the_reference_bit_for_bit(int format, Rounding rounding, BlockAxis axis, bool pad)
    {
        var spec = Specs[format] with { Rounding = rounding };
        var rng = new Random(HashCode.Combine(format, rounding, axis, pad) & 0x7FFFFFFF);
        for (int t = 0; t < 12; t++)
        {
            var (rows, cols) = Shape(rng, spec, axis, pad, large: t == 0);
            Check(rng, spec, axis, pad, rows, cols, nonFinite: t % 4 == 3);
        }
    }

    [Theory]
    [InlineData(0, Rounding.Stochastic, BlockAxis.First)]
    [InlineData(2, Rounding.EmaGuided, BlockAxis.Last)]
    [InlineData(3, Rounding.Nearest, BlockAxis.First)]
    [InlineData(4, Rounding.Stochastic, BlockAxis.Last)]
    [InlineData(5, Rounding.Stochastic, BlockAxis.First)]
    public void Scalar_fallback_matches_the_reference(int format, Rounding rounding, BlockAxis axis)
    {
        var spec = Specs[format] with { Rounding = rounding };
        var rng = new Random(format * 7 + (int)rounding);
        CpuQuantizer.ForceScalar = true;
        try
        {
            for (int t = 0; t < 6; t++)
            {
                var (rows, cols) = Shape(rng, spec, axis, pad: false, large: false);
                Check(rng, spec, axis, false, rows, cols, nonFinite: t == 5);
            }
        }
        finally { CpuQuantizer.ForceScalar = false; }
    }

    [Fact]
    public void Stochastic_rounding_is_deterministic_per_seed_and_stream()
    {
        var rng = new Random(3);
        var x = Tensor(rng, 64, 128, nonFinite: false);
        var spec = new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic);
        float[] Run(ulong seed, ulong stream)
        {
            var y = new float[x.Length];
            CpuQuantizer.Quantize(x, y, 64, 128, BlockAxis.Last, spec, seed, stream);
            return y;
        }
        AssertBitsEqual(Run(11, 5), Run(11, 5), "same seed and stream");
        Assert.NotEqual(Run(11, 5), Run(11, 6));
        Assert.NotEqual(Run(11, 5), Run(12, 5));
    }

    [Fact]
    public void Large_stream_and_element_counters_carry_like_the_reference()
    {
        // Stream ids with both halves set; an odd column count puts Philox groups across row ends.
        var rng = new Random(9);
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
        var x = Tensor(rng, 33, 97, nonFinite: false);
        var y = new float[x.Length];
        var r = new float[x.Length];
        CpuQuantizer.Quantize(x, y, 33, 97, BlockAxis.Last, spec, 0xDEADBEEF12345678, 0xFFFFFFFF00000001, padBlockAxis: true);
        ReferenceQuantizer.Quantize(x, r, 33, 97, BlockAxis.Last, spec, 0xDEADBEEF12345678, 0xFFFFFFFF00000001, padBlockAxis: true);
        AssertBitsEqual(r, y, "large ids");
    }

    [Theory]
    [InlineData(1, 0, Rounding.Stochastic, false)]   // MXFP4 TetraJet, MXFP4 OCP
    [InlineData(2, 2, Rounding.Stochastic, true)]    // NVFP4 both ways (Q3/Q5 of TetraJet-v2), token axis padded
    [InlineData(3, 2, Rounding.Nearest, true)]
    [InlineData(0, 3, Rounding.Stochastic, false)]
    [InlineData(5, 5, Rounding.Nearest, false)]
    public void Fused_pair_equals_two_calls(int specLast, int specFirst, Rounding rounding, bool padFirst)
    {
        var last = Specs[specLast] with { Rounding = rounding };
        var first = Specs[specFirst] with { Rounding = rounding };
        var rng = new Random(specLast * 10 + specFirst);
        for (int t = 0; t < 6; t++)
        {
            int cols = last.FeatureMultiple * rng.Next(1, t == 0 ? 5 : 3) * (t == 0 ? 3 : 1);
            int rows = padFirst ? rng.Next(1, t == 0 ? 700 : 300) : first.FeatureMultiple * rng.Next(1, t == 0 ? 6 : 3);
            var x = Tensor(rng, rows, cols, nonFinite: t == 5);
            var el = new float[x.Length]; var ef = new float[x.Length];
            var al = new float[x.Length]; var af = new float[x.Length];
            ReferenceQuantizer.Quantize(x, el, rows, cols, BlockAxis.Last, last, 3, 10);
            ReferenceQuantizer.Quantize(x, ef, rows, cols, BlockAxis.First, first, 3, 11, default, padFirst);
            CpuQuantizer.QuantizeBothAxes(x, al, af, rows, cols, last, first, 3, 10, 11, padFirst);
            AssertBitsEqual(el, al, $"last [{rows}, {cols}]");
            AssertBitsEqual(ef, af, $"first [{rows}, {cols}]");
        }
    }

    static (int rows, int cols) Shape(Random rng, QuantSpec spec, BlockAxis axis, bool pad, bool large)
    {
        int multiple = spec.FeatureMultiple;
        int blockLen = pad ? rng.Next(1, large ? 300 : 200) : multiple * rng.Next(1, large ? 4 : 3);
        int other = large ? 160 + rng.Next(60) : rng.Next(1, 45);
        if (spec.Tile16) { other = (other + 15) / 16 * 16; blockLen = (blockLen + 15) / 16 * 16; }
        return axis == BlockAxis.Last ? (other, blockLen) : (blockLen, other);
    }

    static void Check(Random rng, QuantSpec spec, BlockAxis axis, bool pad, int rows, int cols, bool nonFinite)
    {
        var x = Tensor(rng, rows, cols, nonFinite);
        float[] ema = spec.Rounding == Rounding.EmaGuided
            ? x.Select(v => v * (float)(0.75 + rng.NextDouble() * 0.5)).ToArray()
            : [];
        ulong seed = (ulong)rng.NextInt64(), stream = (ulong)rng.NextInt64();
        var expected = new float[x.Length];
        var actual = new float[x.Length];
        ReferenceQuantizer.Quantize(x, expected, rows, cols, axis, spec, seed, stream, ema, pad);
        CpuQuantizer.Quantize(x, actual, rows, cols, axis, spec, seed, stream, ema, pad);
        AssertBitsEqual(expected, actual, $"{spec} axis {axis} pad {pad} [{rows}, {cols}]");
    }
}
