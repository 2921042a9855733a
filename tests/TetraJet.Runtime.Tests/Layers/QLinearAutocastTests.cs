using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary>
/// <see cref="QLinear.Autocast"/>: a float32 layer under bfloat16 autocast quantizes exactly what the same layer in
/// bfloat16 quantizes (the six operands, bit for bit), multiplies in bfloat16, and hands back the model's dtypes.
/// </summary>
public class QLinearAutocastTests
{
    static (Tensor Y, Tensor Dx, Tensor Dw, Tensor[] Operands) Run(QLinear layer, Tensor x, Tensor dy)
    {
        var seen = new Tensor[7];
        layer.OperandProbe = (slot, t) => seen[slot] = t.detach().clone().DetachFromDisposeScope();
        var xl = x.detach().clone().requires_grad_();
        var y = layer.call(xl);
        y.backward([dy]);
        layer.OperandProbe = null;
        return (y.detach(), xl.grad!, layer.weight.grad!, seen);
    }

    [Theory]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    public void Bfloat16_autocast_quantizes_as_a_bfloat16_layer_and_returns_float32(RecipeId id)
    {
        Recipe recipe = id;
        manual_seed(21);
        var mixed = new QLinear(256, 128, recipe, name: "mixed") { Seed = 3, LayerId = 5 };
        var bf16 = new QLinear(256, 128, recipe, name: "bf16") { Seed = 3, LayerId = 5 };
        bf16.load_state_dict(mixed.state_dict());
        bf16.to(ScalarType.BFloat16);
        mixed.Autocast = ScalarType.BFloat16;
        var x = randn(48, 256);
        var dy = randn(48, 128);

        var a = Run(mixed, x, dy);
        var b = Run(bf16, x.to(ScalarType.BFloat16), dy.to(ScalarType.BFloat16));

        for (int slot = 1; slot <= 6; slot++)
        {
            Assert.Equal(ScalarType.BFloat16, a.Operands[slot].dtype);
            QuantizerTestData.AssertBitsEqual(b.Operands[slot].to(ScalarType.Float32).data<float>().ToArray(),
                a.Operands[slot].to(ScalarType.Float32).data<float>().ToArray(), $"{recipe.Name} Q{slot}");
        }
        // The model's dtypes come back: output and input gradient as the input, weight gradient as the weight.
        Assert.Equal(ScalarType.Float32, a.Y.dtype);
        Assert.Equal(ScalarType.Float32, a.Dx.dtype);
        Assert.Equal(ScalarType.Float32, a.Dw.dtype);
        // The GEMM ran in bfloat16 on the probed operands, then widened.
        var expected = nn.functional.linear(a.Operands[1], a.Operands[2], mixed.bias!.detach().to(ScalarType.BFloat16)).to(ScalarType.Float32);
        QuantizerTestData.AssertBitsEqual(expected.data<float>().ToArray(), a.Y.data<float>().ToArray(), $"{recipe.Name} Y");
        var dw = a.Operands[5].t().matmul(a.Operands[6]).to(ScalarType.Float32);
        QuantizerTestData.AssertBitsEqual(dw.data<float>().ToArray(), a.Dw.data<float>().ToArray(), $"{recipe.Name} dW");
    }
}
