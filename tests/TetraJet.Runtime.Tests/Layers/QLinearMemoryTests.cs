using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary>X̂ and Ŵ kept packed for backward: same gradients, a quarter of the bytes.</summary>
public class QLinearMemoryTests
{
    [Theory]
    [InlineData(RecipeId.Microscaling)]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    public void Packed_operands_give_bit_identical_gradients(RecipeId id)
    {
        (float[] y, float[] dx, float[] dw) Run(bool pack, ScalarType dtype)
        {
            manual_seed(5);
            using var layer = new QLinear(256, 128, id, name: "fc") { Seed = 17, PackSavedOperands = pack };
            layer.to(dtype);
            var x = randn(3, 24, 256).to(dtype).requires_grad_();
            var y = layer.call(x);
            y.backward([randn(3, 24, 128).to(dtype)]);
            return (y.to(ScalarType.Float32).data<float>().ToArray(), x.grad!.to(ScalarType.Float32).data<float>().ToArray(),
                layer.weight.grad!.to(ScalarType.Float32).data<float>().ToArray());
        }
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var plain = Run(false, dtype);
            var packed = Run(true, dtype);
            QuantizerTestData.AssertBitsEqual(plain.y, packed.y, $"{id} {dtype} y");
            QuantizerTestData.AssertBitsEqual(plain.dx, packed.dx, $"{id} {dtype} dX");
            QuantizerTestData.AssertBitsEqual(plain.dw, packed.dw, $"{id} {dtype} dW");
        }
    }

    [Theory]
    // X̂ [T, K] and Ŵ [N, K] at 0.5 + 1/32 bytes per element (MXFP4) or 0.5 + 1/16 + 4/128 (NVFP4).
    [InlineData(RecipeId.TetraJet, (64 * 256 + 128 * 256) * 17 / 32)]
    [InlineData(RecipeId.TetraJetV2, (64 * 256 + 128 * 256) * 19 / 32)]
    // The NVIDIA recipe's Q6 starts from the original X and its Ŵ is in 16×16 tiles: both kept as they are (bf16).
    [InlineData(RecipeId.NvidiaNvfp4, (64 * 256 + 128 * 256) * 2)]
    [InlineData(RecipeId.BF16, (64 * 256 + 128 * 256) * 2)]
    public void A_layer_keeps_the_storage_formats_bytes(RecipeId id, long expected)
    {
        using var layer = new QLinear(256, 128, id, name: "fc");
        layer.to(ScalarType.BFloat16);
        var x = randn(64, 256).to(ScalarType.BFloat16).requires_grad_();
        using var y = layer.call(x);
        Assert.Equal(expected, layer.LastSavedBytes);
        // nn.Linear keeps X itself (its W is the parameter): 2 bytes per element in bf16. Packed X̂ is 27% of that.
        if (id is RecipeId.TetraJet) Assert.True(64 * 256 * 17 / 32 < 0.27 * 64 * 256 * 2);
    }

    [Fact]
    public void A_model_switches_packing_for_all_its_layers()
    {
        var model = nn.Sequential(("up", new QLinear(128, 256, RecipeId.TetraJet, name: "up")), ("down", new QLinear(256, 128, RecipeId.TetraJet, name: "down")));
        var x = randn(32, 128).requires_grad_();
        model.call(x).Dispose();
        long packed = model.SavedBytes();
        Assert.Equal((32 * 128 + 256 * 128 + 32 * 256 + 128 * 256) * 17 / 32, packed);
        model.PackSavedOperands(false);
        model.call(x).Dispose();
        Assert.Equal((32 * 128 + 256 * 128 + 32 * 256 + 128 * 256) * 4, model.SavedBytes());   // float32 X̂ and Ŵ
    }

    [Fact]
    public void Evaluation_keeps_nothing()
    {
        using var layer = new QLinear(128, 128, RecipeId.TetraJetV2, name: "fc");
        using (no_grad()) layer.call(randn(8, 128)).Dispose();
        Assert.Equal(0, layer.LastSavedBytes);
    }
}
