using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary><see cref="Recipe.WithSlot"/>: the semantics of a per-slot override, and a layer that runs one.</summary>
public class RecipeWithSlotTests
{
    static readonly Recipe TetraJet = Recipe.Get(RecipeId.TetraJet), V2 = Recipe.Get(RecipeId.TetraJetV2), Nvidia = Recipe.Get(RecipeId.NvidiaNvfp4);

    [Fact]
    public void Replaces_one_slot_and_leaves_the_rest_and_the_options()
    {
        var r = (TetraJet with { QEma = true }).WithSlot(Slot.Q3, Format.MXFP4, Rounding.Nearest);
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest)), r.Q3);
        Assert.Equal(TetraJet with { QEma = true, Q3 = r.Q3 }, r);
        Assert.Equal("TetraJet", r.Name);
        Assert.NotEqual(TetraJet with { QEma = true }, r);   // equality covers the slots: configurations differ
    }

    [Fact]
    public void An_overridden_slot_keeps_its_source_and_the_recipe_slots_defaults()
    {
        // Q4 and Q6 re-quantize the forward values; SR and the RHT stay when not given.
        var q6 = V2.WithSlot(Slot.Q6, Format.MXFP4).Q6;
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), SlotSource.ForwardDequantized, Hadamard: true), q6);
        // The NVIDIA recipe's Q6 starts from X, and keeps doing so.
        Assert.Equal(SlotSource.Original, Nvidia.WithSlot(Slot.Q6, Format.MXFP8, Rounding.Stochastic).Q6.Source);
        // A scale rule is MXFP4's: Microscaling's OCP rule stays on its slots, and is dropped by another format.
        var micro = Recipe.Get(RecipeId.Microscaling);
        Assert.Equal(ScaleRule.Ocp, micro.WithSlot(Slot.Q1, Format.MXFP4, Rounding.Stochastic).Q1.Spec.ScaleRule);
        Assert.Equal(ScaleRule.TetraJet, micro.WithSlot(Slot.Q1, Format.NVFP4, scaleRule: ScaleRule.Ocp).Q1.Spec.ScaleRule);
        Assert.Equal(ScaleRule.Ocp, TetraJet.WithSlot(Slot.Q2, Format.MXFP4, scaleRule: ScaleRule.Ocp).Q2.Spec.ScaleRule);
    }

    [Theory]
    [InlineData(Slot.Q1, Rounding.Nearest)]
    [InlineData(Slot.Q2, Rounding.Nearest)]
    [InlineData(Slot.Q3, Rounding.Stochastic)]
    [InlineData(Slot.Q4, Rounding.Stochastic)]
    [InlineData(Slot.Q5, Rounding.Stochastic)]
    [InlineData(Slot.Q6, Rounding.Stochastic)]
    public void A_slot_that_was_BF16_rounds_to_nearest_forward_and_stochastically_backward(Slot slot, Rounding expected)
    {
        var r = Recipe.Get(RecipeId.BF16).WithSlot(slot, Format.NVFP4);
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.NVFP4, expected)), r.GetSlot(slot));
        Assert.Equal(slot >= Slot.Q5 ? 1 : 128, r.FeatureMultiple);   // Q1–Q4 block the features; Q5 and Q6 the (padded) tokens
    }

    [Fact]
    public void The_NVIDIA_Q4_re_quantizes_once_overridden()
    {
        Assert.Equal(SlotSource.ForwardCodesTransposed, Nvidia.Q4.Source);
        var q4 = Nvidia.WithSlot(Slot.Q4, Format.NVFP4PerTensor).Q4;
        // Same format and rounding as the recipe's, but its own numbers now: Ŵ re-quantized along N, blocks of 16.
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.NVFP4Tensor, Rounding.Nearest), SlotSource.ForwardDequantized), q4);
        Assert.Equal(SlotSource.ForwardDequantized, Nvidia.WithSlot(Slot.Q4, Format.BF16).Q4.Source);
        // Q2 keeps its 16×16 tiles in NVFP4 per tensor, and loses them in another format.
        Assert.True(Nvidia.WithSlot(Slot.Q2, Format.NVFP4PerTensor, Rounding.Stochastic).Q2.Spec.Tile16);
        Assert.False(Nvidia.WithSlot(Slot.Q2, Format.MXFP4).Q2.Spec.Tile16);
    }

    [Fact]
    public void BF16_ignores_rounding_and_transform_and_equals_the_BF16_recipes_slot()
    {
        var r = TetraJet.WithSlot(Slot.Q3, Format.BF16, Rounding.Stochastic, hadamard: true);
        Assert.Equal(QuantizerSlot.None, r.Q3);
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.None), SlotSource.ForwardDequantized), TetraJet.WithSlot(Slot.Q4, Format.BF16).Q4);
        Assert.Equal(Recipe.Get(RecipeId.BF16), Recipe.Get(RecipeId.BF16).WithSlot(Slot.Q5, Format.BF16));
    }

    [Fact]
    public void Rejects_EMA_guided_rounding_and_a_forward_transform()
    {
        var ema = Assert.Throws<ArgumentException>(() => TetraJet.WithSlot(Slot.Q2, Format.MXFP4, Rounding.EmaGuided));
        Assert.Contains("QEma", ema.Message);
        var rht = Assert.Throws<ArgumentException>(() => V2.WithSlot(Slot.Q1, Format.NVFP4, hadamard: true));
        Assert.StartsWith("Q1 cannot apply the random Hadamard transform", rht.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TetraJet.WithSlot((Slot)7, Format.MXFP4));
        Assert.Throws<ArgumentOutOfRangeException>(() => TetraJet.WithSlot(Slot.Q3, (Format)9));
    }

    /// <summary>The table that docs/DSL.md shows for this recipe, in full.</summary>
    [Fact]
    public void Describe_of_a_wgrad_in_BF16()
    {
        var expected = string.Join(Environment.NewLine,
            "Recipe TetraJet-v2",
            "| # | operand | block axis | quantizer |",
            "|---|---|---|---|",
            "| Q1 | X | K | NVFP4 RTN |",
            "| Q2 | W | K | NVFP4 RTN |",
            "| Q3 | dY | N | NVFP4 SR + RHT |",
            "| Q4 | Ŵ | N | NVFP4 SR + RHT (re-quantized) |",
            "| Q5 | dY | T | BF16 (overridden) |",
            "| Q6 | X̂ | T | BF16 (overridden) |",
            "options: none", "");
        Assert.Equal(expected, V2.WithSlot(Slot.Q5, Format.BF16).WithSlot(Slot.Q6, Format.BF16).Describe());
    }

    [Fact]
    public void Describe_marks_the_overridden_slots()
    {
        var text = V2.WithSlot(Slot.Q5, Format.BF16).WithSlot(Slot.Q6, Format.BF16).Describe();
        Assert.Contains("| Q5 | dY | T | BF16 (overridden) |", text);
        Assert.Contains("| Q6 | X̂ | T | BF16 (overridden) |", text);
        Assert.Contains("| Q3 | dY | N | NVFP4 SR + RHT |", text);
        Assert.DoesNotContain("overridden", V2.Describe());
        Assert.True(V2.WithSlot(Slot.Q5, Format.BF16).IsOverridden(Slot.Q5));
        Assert.False(V2.WithSlot(Slot.Q5, Format.BF16).IsOverridden(Slot.Q3));
        // An override equal to the recipe's slot is no override.
        Assert.False(V2.WithSlot(Slot.Q3, Format.NVFP4).IsOverridden(Slot.Q3));
        Assert.Equal(V2, V2.WithSlot(Slot.Q3, Format.NVFP4));
        // The NVIDIA Q4 that reuses a Q2 without tiles says so.
        Assert.Contains("| Q4 | Ŵ | N | forward Ŵ of Q2, transposed |", Nvidia.WithSlot(Slot.Q2, Format.MXFP4).Describe());
    }

    [Theory]
    [InlineData(Slot.Q3, "Q3 of recipe TetraJet-v2 applies the random Hadamard transform but Q4 does not, so the dgrad GEMM's transforms would not cancel")]
    [InlineData(Slot.Q6, "Q5 of recipe TetraJet-v2 applies the random Hadamard transform but Q6 does not, so the wgrad GEMM's transforms would not cancel")]
    public void A_layer_rejects_a_transform_on_one_operand_of_a_GEMM(Slot bf16, string message)
    {
        var recipe = bf16 == Slot.Q3 ? V2.WithSlot(Slot.Q4, Format.BF16) : V2.WithSlot(bf16, Format.BF16);
        var error = Assert.Throws<ArgumentException>(() => new QLinear(128, 128, recipe, name: "Proj"));
        Assert.Equal("Proj: " + message + "; give both or neither the transform", error.Message);
        // Both without the transform: fine.
        using var ok = new QLinear(128, 128, recipe.WithSlot(bf16 == Slot.Q3 ? Slot.Q3 : Slot.Q5, Format.NVFP4, hadamard: false));
    }

    /// <summary>
    /// TetraJet with its whole backward in BF16 (Q3–Q6): the gradients are the exact ones of the fake-quantized forward,
    /// dX = dY·Ŵ and dW = dYᵀ·X̂, bit for bit; the forward is TetraJet's own.
    /// </summary>
    [Fact]
    public void A_layer_runs_the_overridden_slots()
    {
        manual_seed(5);
        var recipe = TetraJet.WithSlot(Slot.Q3, Format.BF16).WithSlot(Slot.Q4, Format.BF16).WithSlot(Slot.Q5, Format.BF16).WithSlot(Slot.Q6, Format.BF16);
        using var layer = new QLinear(64, 96, recipe, bias: false);
        using var plain = new QLinear(64, 96, TetraJet, bias: false);
        using (no_grad()) plain.weight.copy_(layer.weight);
        var x = randn(8, 64).requires_grad_();
        var dy = randn(8, 96);
        var y = layer.call(x);
        y.backward([dy]);

        var xq = Quantizer.Quantize(x.detach(), TetraJet.Q1.Spec);
        var wq = Quantizer.Quantize(layer.weight.detach(), TetraJet.Q2.Spec);
        Assert.True(Same(plain.call(x.detach()), y.detach()), "the forward is TetraJet's");
        Assert.True(Same(dy.matmul(wq), x.grad!), "dX = dY·Ŵ");
        Assert.True(Same(dy.t().matmul(xq), layer.weight.grad!), "dW = dYᵀ·X̂");
        Assert.False(Same(x.detach(), xq));   // X̂ really is quantized
        Assert.False(Same(dy.t().matmul(x.detach()), layer.weight.grad!));
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && equal(a, b).all().item<bool>();
}
