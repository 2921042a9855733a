using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests;

/// <summary>The tensor-level dispatch: float32 and bfloat16 CPU tensors through the CPU path equal the reference.</summary>
public class QuantizerTensorTests
{
    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Nearest, BlockAxis.Last)]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, BlockAxis.First)]
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, BlockAxis.Last)]
    [InlineData(QuantFormat.NVFP4Tensor, Rounding.Nearest, BlockAxis.First)]
    [InlineData(QuantFormat.MXFP8, Rounding.Nearest, BlockAxis.Last)]
    public void Bfloat16_equals_the_reference_on_widened_values_rounded_to_bf16(QuantFormat format, Rounding rounding, BlockAxis axis)
    {
        var spec = new QuantSpec(format, rounding);
        var rng = new Random(17);
        const int rows = 256, cols = 256;
        using var x32 = tensor(QuantizerTestData.Tensor(rng, rows, cols, nonFinite: false), rows, cols);
        using var xb = x32.to(ScalarType.BFloat16);
        using var widened = xb.to(ScalarType.Float32);
        var expected = new float[rows * cols];
        ReferenceQuantizer.Quantize(TensorMemory.Floats(widened), expected, rows, cols, axis, spec, 5, 6);
        using var expectedBf16 = tensor(expected, rows, cols).to(ScalarType.BFloat16);
        using var actual = Quantizer.Quantize(xb, spec, axis, 5, 6);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        Assert.Equal(TensorMemory.BFloat16Bits(expectedBf16).ToArray(), TensorMemory.BFloat16Bits(actual.contiguous()).ToArray());
    }

    [Fact]
    public void Float32_with_hadamard_equals_the_reference_on_the_transformed_tensor()
    {
        var rng = new Random(23);
        const int rows = 64, cols = 128;
        var data = QuantizerTestData.Tensor(rng, rows, cols, nonFinite: false);
        var spec = new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic);
        var transformed = (float[])data.Clone();
        Hadamard.Apply(transformed, rows, cols, BlockAxis.Last, TetraJet.Randomness.Philox.HadamardSigns(3, 4));
        var expected = new float[data.Length];
        ReferenceQuantizer.Quantize(transformed, expected, rows, cols, BlockAxis.Last, spec, 3, 4);
        using var x = tensor(data, rows, cols);
        using var y = Quantizer.Quantize(x, spec, BlockAxis.Last, 3, 4, hadamard: true);
        QuantizerTestData.AssertBitsEqual(expected, TensorMemory.Floats(y).ToArray(), "hadamard");
    }
}
