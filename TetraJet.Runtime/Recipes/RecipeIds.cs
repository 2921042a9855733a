namespace TetraJet.Recipes;

/// <summary>Maps between the attribute's <see cref="Format"/> shorthand and the named recipes.</summary>
public static class RecipeIds
{
    /// <summary>The recipe a <c>[Quantize(Format.X)]</c> stands for; only BF16, MXFP4 and NVFP4 name one.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="format"/> is an element format without a recipe (the generator reports TJ1014 first).</exception>
    public static RecipeId For(Format format) => format switch
    {
        Format.BF16 => RecipeId.BF16,
        Format.MXFP4 => RecipeId.TetraJet,
        Format.NVFP4 => RecipeId.TetraJetV2,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format,
            "only BF16, MXFP4 and NVFP4 name a recipe; name a recipe (e.g. Recipe.NvidiaNvfp4) or put single quantizers in this format with [QuantizeSlot]"),
    };

    /// <summary>The format family of a recipe: NVFP4 for both NVFP4 recipes (the NVIDIA one quantizes in <see cref="Format.NVFP4PerTensor"/>).</summary>
    public static Format FormatOf(RecipeId recipe) => recipe switch
    {
        RecipeId.Microscaling or RecipeId.TetraJet => Format.MXFP4,
        RecipeId.NvidiaNvfp4 or RecipeId.TetraJetV2 => Format.NVFP4,
        _ => Format.BF16,
    };
}
