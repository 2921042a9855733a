using TetraJet.Benchmarks;
using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests;

/// <summary>The benchmark's composed-TorchSharp-ops quantizers give the reference's bits, so timing them against the SIMD path is fair.</summary>
public class ComposedQuantizersTests
{
    [Theory]
    [InlineData(QuantFormat.MXFP4, 0)]
    [InlineData(QuantFormat.MXFP4, -130)]
    [InlineData(QuantFormat.NVFP4, 0)]
    [InlineData(QuantFormat.NVFP4, 20)]
    public void Composed_ops_match_the_reference(QuantFormat format, int exponent)
    {
        const int rows = 64, cols = 256;
        var rng = new Random(77 + exponent);
        var x = QuantizerTestData.Tensor(rng, rows, cols, nonFinite: false);
        for (int i = 0; i < x.Length; i++) x[i] = MathF.ScaleB(x[i], exponent) is var v && float.IsFinite(v) ? v : 0f;
        var expected = new float[x.Length];
        ReferenceQuantizer.Quantize(x, expected, rows, cols, BlockAxis.Last, new QuantSpec(format));
        using var tx = tensor(x, rows, cols);
        using var y = format == QuantFormat.MXFP4 ? ComposedQuantizers.Mxfp4(tx) : ComposedQuantizers.Nvfp4(tx);
        QuantizerTestData.AssertBitsEqual(expected, TensorMemory.Floats(y.contiguous()).ToArray(), $"composed {format}");
    }
}
