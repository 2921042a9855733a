using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

public class QLinearBehaviourTests
{
    [Fact]
    public void K_not_a_block_multiple_names_layer_and_size()
    {
        var ex = Assert.Throws<ArgumentException>(() => new QLinear(100, 128, Recipe.TetraJetV2, name: "blocks.3.mlp.up"));
        Assert.Contains("blocks.3.mlp.up", ex.Message);
        Assert.Contains("100", ex.Message);
        Assert.Contains("128", ex.Message);
    }

    [Fact]
    public void Rank0_and_mismatched_inputs_name_layer_tensor_and_size()
    {
        var layer = new QLinear(64, 32, Recipe.TetraJet, name: "proj");
        var e1 = Assert.Throws<ArgumentException>(() => layer.call(tensor(1f)));
        Assert.Contains("proj", e1.Message);
        Assert.Contains("rank-0", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => layer.call(zeros(3, 48)));
        Assert.Contains("proj", e2.Message);
        Assert.Contains("48", e2.Message);
        Assert.Contains("64", e2.Message);
    }

    [Theory]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    public void NaN_in_the_input_gives_NaN_in_the_output(RecipeId id)
    {
        var layer = new QLinear(128, 128, id);
        var x = randn(4, 128);
        x[1, 5] = tensor(float.NaN);
        var y = layer.call(x);
        Assert.True(y[1].isnan().all().item<bool>());
        if (id != RecipeId.NvidiaNvfp4) Assert.False(y[0].isnan().any().item<bool>());   // per-tensor scale: all rows NaN
    }

    [Theory]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    public void Same_seed_gives_bit_identical_gradients_other_seed_differs(RecipeId id)
    {
        (Tensor dx, Tensor dw) Run(ulong seed)
        {
            manual_seed(11);
            var layer = new QLinear(128, 128, id) { Seed = seed };
            var x = randn(24, 128).requires_grad_();
            layer.call(x).backward([randn(24, 128)]);
            return (x.grad!, layer.weight.grad!);
        }
        var a = Run(5); var b = Run(5); var c = Run(6);
        Assert.True(a.dx.eq(b.dx).all().item<bool>());
        Assert.True(a.dw.eq(b.dw).all().item<bool>());
        Assert.False(a.dw.eq(c.dw).all().item<bool>());
    }

    [Fact]
    public void Hadamard_on_both_operands_leaves_the_product_unchanged()
    {
        manual_seed(2);
        var a = randn(8, 64); var b = randn(64, 32);
        var exact = a.matmul(b);
        var at = a.clone(); var bt = b.clone();
        uint signs = Randomness.Philox.HadamardSigns(9, 4);
        Hadamard.Apply(Interop.TensorMemory.Floats(at), 8, 64, BlockAxis.Last, signs);
        Hadamard.Apply(Interop.TensorMemory.Floats(bt), 64, 32, BlockAxis.First, signs);
        Assert.False(at.allclose(a));
        Assert.True(at.matmul(bt).allclose(exact, 1e-5, 1e-4));
    }

    [Theory]
    [InlineData(RecipeId.BF16)]
    [InlineData(RecipeId.Microscaling)]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    [InlineData(RecipeId.TetraJetV2)]
    public void A_small_mlp_learns_a_synthetic_task(RecipeId id)
    {
        manual_seed(1);
        var teacher = randn(128, 8);
        var x = randn(256, 128);
        var target = x.matmul(teacher).tanh();
        var up = new QLinear(128, 128, id, name: "up");
        var down = new QLinear(128, 128, id, name: "down");
        var head = nn.Linear(128, 8);
        var parameters = up.parameters().Concat(down.parameters()).Concat(head.parameters());
        var opt = optim.AdamW(parameters, lr: 3e-3);
        float first = 0, last = 0;
        for (int step = 0; step < 60; step++)
        {
            opt.zero_grad();
            var y = head.call(nn.functional.gelu(down.call(nn.functional.gelu(up.call(x)))));
            var loss = nn.functional.mse_loss(y, target);
            loss.backward();
            opt.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < 0.5f * first, $"{id}: loss {first} → {last}");
    }
}
