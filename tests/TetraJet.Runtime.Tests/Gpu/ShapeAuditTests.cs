using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// Every kernel family on the shapes a user meets, run by ILGPU's CPU accelerator against the reference: features that
/// are multiples of the format's block but not of 128 or 64 (DeiT-T's 192 is 64·3; 96 = 32·3 and 160 = 32·5 here),
/// and odd token counts. Before the features-axis packing kernels covered a row's partial last warp, the storing
/// cases here failed (the last 64 positions of a 192-wide row were never written; a 96-wide row divided by zero).
/// </summary>
[Collection("cpu accelerator")]
public class ShapeAuditTests(CpuAcceleratorFixture fixture)
{
    public static TheoryData<string> Specs()
    {
        var data = new TheoryData<string>();
        foreach (var s in GpuTestData.AllSpecs().Where(s => !s.Tile16)) data.Add($"{s.Format}|{s.Rounding}|{s.ScaleRule}");
        return data;
    }

    static QuantSpec Parse(string name)
    {
        var p = name.Split('|');
        return new(Enum.Parse<QuantFormat>(p[0]), Enum.Parse<Rounding>(p[1]), Enum.Parse<ScaleRule>(p[2]));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Quantizers_on_features_that_are_not_multiples_of_128(string specName)
    {
        var spec = Parse(specName);
        int seed = specName.Length;
        var features = GpuSelfCheck.FeatureLengths(spec, 2, seed).Select(k => Math.Min(k, spec.FeatureMultiple * 7)).ToArray();
        foreach (int k in features)
            foreach (int t in new[] { 1, 7 })
            {
                var x = GpuTestData.Adversarial(t, k, t * 13 + k);
                var ema = spec.Rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 2) : null;
                var actual = new float[x.Length];
                GpuQuantizer.Quantize(fixture.Accelerator, x, actual, t, k, BlockAxis.Last, spec, 3, 4, ema);
                GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, t, k, BlockAxis.Last, spec, 3, 4, ema, false, false), actual, $"{spec} [{t},{k}] along K");
                // The same tensor along its odd token axis (padded), as Q5/Q6 see it.
                GpuQuantizer.Quantize(fixture.Accelerator, x, actual, t, k, BlockAxis.First, spec, 3, 4, ema, padBlockAxis: true);
                GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, t, k, BlockAxis.First, spec, 3, 4, ema, true, false), actual, $"{spec} [{t},{k}] along T");
            }
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, 192)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, 96)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, 160)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, 32)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, 384)]
    public void Storage_and_requantization_from_storage_on_features_that_are_not_multiples_of_128(QuantFormat format, ScaleRule rule, int k)
    {
        var spec = new QuantSpec(format, Rounding.Nearest, rule);
        const int t = 5;
        var x = GpuTestData.Adversarial(t, k, k);
        var (codes, scales, outer, quantized, values) = GpuQuantizer.Store(fixture.Accelerator, x, t, k, spec);
        using var reference = Quantizer.QuantizePacked(tensor(x, t, k), spec);
        Assert.Equal(reference.Codes.data<byte>().ToArray(), codes);
        Assert.Equal(reference.Scales.data<byte>().ToArray(), scales);
        Assert.Equal(reference.OuterScales.data<float>().ToArray(), outer);
        var q = GpuTestData.Reference(x, t, k, BlockAxis.Last, spec, 0, 0, null, false, false);
        GpuTestData.AssertBitsEqual(q, quantized, $"{spec} [{t},{k}] stored values");
        GpuTestData.AssertBitsEqual(q, values, $"{spec} [{t},{k}] unpacked");

        // Q6 of X̂ from that storage along the odd token axis: T padded to 16 with the RHT (NVFP4) or to the block (MX).
        var target = spec with { Rounding = Rounding.Stochastic };
        bool had = format == QuantFormat.NVFP4;
        int rows = had ? 16 : t;
        uint? signs = had ? TetraJet.Randomness.Philox.HadamardSigns(7, 8) : null;
        var padded = new float[rows * k];
        Array.Copy(q, padded, q.Length);
        var expected = GpuTestData.Reference(padded, rows, k, BlockAxis.First, target, 7, 8, null, true, had);
        var actual = GpuQuantizer.QuantizeFromStored(fixture.Accelerator, codes, scales, outer, rows, k, t, spec, target, 7, 8, signs);
        GpuTestData.AssertBitsEqual(expected, actual, $"{target} from storage [{t}→{rows},{k}]");
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, 37, 96, false)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, 9, 160, false)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, 48, 384, true)]
    public void Fused_dY_on_features_that_are_not_multiples_of_128(QuantFormat format, ScaleRule rule, int rows, int cols, bool hadamard)
    {
        var spec = new QuantSpec(format, Rounding.Stochastic, rule);
        var x = GpuTestData.Adversarial(rows, cols, rows + cols);
        var q3 = new float[x.Length];
        var q5 = new float[x.Length];
        GpuQuantizer.QuantizeDual(fixture.Accelerator, x, q3, q5, rows, cols, spec, 42, 11, 12, hadamard);
        GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 42, 11, null, false, hadamard), q3, "Q3");
        GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, 42, 12, null, true, hadamard), q5, "Q5");
    }

    /// <summary>
    /// Rows of three runs of 256 positions (the last one partial): a warp's second run is the first of the next row for
    /// every other warp, and some warps start a row beyond the last.
    /// </summary>
    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, ScaleRule.TetraJet, 544, false)]
    [InlineData(QuantFormat.MXFP4, Rounding.Nearest, ScaleRule.Ocp, 608, true)]
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, ScaleRule.TetraJet, 640, true)]
    public void Row_kernels_on_rows_of_an_odd_number_of_runs(QuantFormat format, Rounding rounding, ScaleRule rule, int cols, bool hadamard)
    {
        var spec = new QuantSpec(format, rounding, rule);
        foreach (int rows in new[] { 1, 2, 5 })
        {
            var x = GpuTestData.Adversarial(rows, cols, rows * 17 + cols);
            var actual = new float[x.Length];
            GpuQuantizer.Quantize(fixture.Accelerator, x, actual, rows, cols, BlockAxis.Last, spec, 5, 6, null, false, hadamard);
            GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 5, 6, null, false, hadamard), actual,
                $"{spec} [{rows},{cols}]");
        }
    }
}
