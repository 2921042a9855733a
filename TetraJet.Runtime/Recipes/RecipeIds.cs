namespace TetraJet.Recipes;

/// <summary>Maps between the attribute's <see cref="Format"/> shorthand and the named recipes.</summary>
public static class RecipeIds
{
    public static RecipeId For(Format format) => format switch
    {
        Format.MXFP4 => RecipeId.TetraJet,
        Format.NVFP4 => RecipeId.TetraJetV2,
        _ => RecipeId.BF16,
    };

    public static Format FormatOf(RecipeId recipe) => recipe switch
    {
        RecipeId.Microscaling or RecipeId.TetraJet => Format.MXFP4,
        RecipeId.NvidiaNvfp4 or RecipeId.TetraJetV2 => Format.NVFP4,
        _ => Format.BF16,
    };
}
