using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

public class ModelTests
{
    static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());

    static long VitParams(VitConfig c)
    {
        long d = c.Dim, m = c.MlpDim, p = c.PatchSize;
        long block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d);
        return c.Channels * p * p * d + d      // patch conv
            + d + (c.Patches + 1) * d          // class token, positions
            + c.Depth * block
            + 2 * d + d * c.NumClasses + c.NumClasses;
    }

    static long GptParams(GptConfig c)
    {
        long d = c.Dim, h = c.Hidden, v = c.VocabSize;
        long block = 3 * d * d + d * d + 2 * h * d + h * d + 4 * d;   // qkv, o, gate_up, down, four RMSNorm gains
        return v * d + c.Layers * block + d + (c.TiedHead ? 0 : v * d);
    }

    [Theory]
    [InlineData("tiny-cpu")]
    [InlineData("tiny")]
    [InlineData("small")]
    public void Vit_parameter_count_matches_config(string size)
    {
        var c = VitConfig.Get(size);
        using var m = new Vit(c, Recipe.Get(RecipeId.TetraJet));
        Assert.Equal(VitParams(c), Count(m));
        Assert.Equal(4 * c.Depth, m.QuantizedLinears.Count());
    }

    [Fact]
    public void Deit_sizes_have_the_paper_widths()
    {
        Assert.Equal((192, 12, 3), (VitConfig.Get("tiny").Dim, VitConfig.Get("tiny").Depth, VitConfig.Get("tiny").Heads));
        Assert.Equal((384, 12, 6), (VitConfig.Get("small").Dim, VitConfig.Get("small").Depth, VitConfig.Get("small").Heads));
        Assert.Equal((512, 8), (GptConfig.Get("70m").Dim, GptConfig.Get("70m").Layers));
        Assert.Equal((768, 12), (GptConfig.Get("150m").Dim, GptConfig.Get("150m").Layers));
        Assert.Equal((1024, 16), (GptConfig.Get("370m").Dim, GptConfig.Get("370m").Layers));
    }

    [Theory]
    [InlineData("tiny-cpu")]
    [InlineData("70m")]
    public void Gpt_parameter_count_matches_config(string size)
    {
        var c = GptConfig.Get(size);
        using var m = new Gpt(c, Recipe.Get(RecipeId.TetraJetV2));
        Assert.Equal(GptParams(c), Count(m));
        Assert.Equal(4 * c.Layers, m.QuantizedLinears.Count());
    }

    [Fact]
    public void Initial_weights_are_truncated_normal_not_constant()
    {
        using var m = new Vit(VitConfig.Get("tiny-cpu"), Recipe.Get(RecipeId.TetraJet));
        foreach (var l in m.QuantizedLinears)
        {
            double std = l.weight.std().item<float>(), max = l.weight.abs().max().item<float>();
            Assert.InRange(std, 0.015, 0.02);   // σ 0.02 truncated at 2σ has standard deviation 0.0176
            Assert.True(max <= 0.04 + 1e-6);
        }
    }

    [Fact]
    public void Vit_maps_images_to_class_logits()
    {
        using var m = new Vit(VitConfig.Get("tiny-cpu"), Recipe.Get(RecipeId.TetraJet));
        using var y = m.call(randn(3, 1, 28, 28));
        Assert.Equal([3L, 10L], y.shape);
    }

    [Fact]
    public void Gpt_maps_tokens_to_vocabulary_logits_and_is_causal()
    {
        var c = GptConfig.Get("tiny-cpu") with { VocabSize = 300 };
        using var m = new Gpt(c, Recipe.Get(RecipeId.TetraJetV2));
        m.eval();
        using var x = randint(0, 300, [2, 16]);
        using var y = m.call(x);
        Assert.Equal([2L, 16L, 300L], y.shape);
        // Changing the last token must not change the logits of earlier positions.
        using var x2 = x.clone();
        x2[.., 15] = (x2[.., 15] + 1) % 300;
        using var y2 = m.call(x2);
        Assert.True(y[.., ..15].allclose(y2[.., ..15], 1e-5, 1e-5));
        Assert.False(y[.., 15].allclose(y2[.., 15]));
    }

    [Fact]
    public void Nvidia_recipe_keeps_the_last_fifteen_percent_of_blocks_in_bf16()
    {
        var nv = Recipe.Get(RecipeId.NvidiaNvfp4);
        Assert.Equal(1, BlockRecipes.Bf16TailBlocks(nv, 4));
        Assert.Equal(2, BlockRecipes.Bf16TailBlocks(nv, 12));
        Assert.Equal(3, BlockRecipes.Bf16TailBlocks(nv, 16));
        Assert.Equal(0, BlockRecipes.Bf16TailBlocks(Recipe.Get(RecipeId.TetraJetV2), 16));
        using var m = new Vit(VitConfig.Get("tiny-cpu"), nv);
        var recipes = m.QuantizedLinears.Select(l => l.Recipe.Name).ToList();
        Assert.All(recipes.Take(12), r => Assert.Equal("NVIDIA-NVFP4", r));
        Assert.All(recipes.Skip(12), r => Assert.Equal("BF16", r));
    }

    [Fact]
    public void Feature_sizes_that_the_format_cannot_block_are_refused_with_the_layer_name()
    {
        // DeiT-T's width 192 is a multiple of 32 (MXFP4) but not of 128 (TetraJet-v2 NVFP4).
        using var ok = new Vit(VitConfig.Get("tiny"), Recipe.Get(RecipeId.TetraJet));
        var e = Assert.Throws<ArgumentException>(() => new Vit(VitConfig.Get("tiny"), Recipe.Get(RecipeId.TetraJetV2)));
        Assert.Contains("blocks.0.qkv", e.Message);
        Assert.Contains("128", e.Message);
    }
}
