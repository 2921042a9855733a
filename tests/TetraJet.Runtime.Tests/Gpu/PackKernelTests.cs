using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The storing row kernels and the unpack kernels, run by ILGPU's CPU accelerator, against the reference quantizer: same bytes, same values.</summary>
[Collection("cpu accelerator")]
public class PackKernelTests(CpuAcceleratorFixture fixture)
{
    // Features that are multiples of the block but not of 128 (DeiT-T's 192, 576, 768 → 96 and 32 here) and odd row counts:
    // a warp covers 128 positions, so the last one of a row is partly empty.
    [Theory]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, false, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 5, 192)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, false, 3, 96)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, true, 7, 32)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 1, 160)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, false, 3, 384)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, false, 5, 96)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, true, 3, 160)]
    public void Kernels_write_the_reference_bytes_and_read_back_the_quantizers_values(QuantFormat format, ScaleRule rule, bool nonFinite, int rows, int cols)
    {
        foreach (var rounding in new[] { Rounding.Nearest, Rounding.Stochastic, Rounding.EmaGuided })
        {
            var spec = new QuantSpec(format, rounding, rule);
            var x = GpuTestData.Adversarial(rows, cols, 11 + (int)format, nonFinite);
            var ema = rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 3) : null;
            var (codes, scales, outer, quantized, values) = GpuQuantizer.Store(fixture.Accelerator, x, rows, cols, spec, 5, 6, ema);

            using var reference = Quantizer.QuantizePacked(tensor(x, rows, cols), spec, BlockAxis.Last, 5, 6, ema is null ? null : tensor(ema, rows, cols));
            var q = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 5, 6, ema, false, false);
            Assert.Equal(reference.Codes.data<byte>().ToArray(), codes);
            Assert.Equal(reference.Scales.data<byte>().ToArray(), scales);
            Assert.Equal(reference.OuterScales.data<float>().ToArray(), outer);
            GpuTestData.AssertBitsEqual(q, quantized, $"{spec} quantized");
            GpuTestData.AssertBitsEqual(q, values, $"{spec} unpacked");
        }
    }
}

/// <summary>Backward's re-quantizers reading packed X̂/Ŵ, on ILGPU's CPU accelerator, against unpack + the reference quantizer.</summary>
[Collection("cpu accelerator")]
public class PackedSourceKernelTests(CpuAcceleratorFixture fixture)
{
    [Theory]
    [InlineData(QuantFormat.MXFP4, QuantFormat.MXFP4, false, 64, 64)]
    [InlineData(QuantFormat.MXFP4, QuantFormat.MXFP4, false, 40, 40)]      // T not a block multiple: padded by the quantizer
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, true, 256, 256)]
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, true, 200, 208)]     // RHT: rows padded to 16 beforehand
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, false, 130, 130)]
    [InlineData(QuantFormat.MXFP4, QuantFormat.NVFP4, true, 48, 48)]
    public void One_pass_from_storage_equals_unpack_then_quantize(QuantFormat sourceFormat, QuantFormat targetFormat, bool hadamard, int sourceRows, int rows)
    {
        var source = new QuantSpec(sourceFormat);
        var target = new QuantSpec(targetFormat, Rounding.Stochastic);
        const int cols = 128;
        const ulong seed = 9, stream = 31;
        var x = GpuTestData.Adversarial(sourceRows, cols, sourceRows + cols, nonFinite: false);
        var q = GpuTestData.Reference(x, sourceRows, cols, BlockAxis.Last, source, 0, 0, null, false, false);
        using var packed = Quantizer.QuantizePacked(tensor(x, sourceRows, cols), source);

        var padded = new float[rows * cols];
        Array.Copy(q, padded, q.Length);
        var expected = GpuTestData.Reference(padded, rows, cols, BlockAxis.First, target, seed, stream, null, true, hadamard);
        uint? signs = hadamard ? TetraJet.Randomness.Philox.HadamardSigns(seed, stream) : null;
        var actual = GpuQuantizer.QuantizeFromStored(fixture.Accelerator, packed.Codes.data<byte>().ToArray(), packed.Scales.data<byte>().ToArray(),
            packed.OuterScales.data<float>().ToArray(), rows, cols, sourceRows, source, target, seed, stream, signs);
        GpuTestData.AssertBitsEqual(expected, actual, $"{target} from {source} rows {sourceRows}→{rows}");
    }
}
