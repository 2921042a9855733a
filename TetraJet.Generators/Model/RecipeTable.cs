namespace TetraJet.Generators;

/// <summary>Mirrors <c>TetraJet.RecipeId</c>; the generator cannot reference the runtime, so the values are repeated here.</summary>
internal enum RecipeKind
{
    BF16 = 0,
    Microscaling = 1,
    TetraJet = 2,
    NvidiaNvfp4 = 3,
    TetraJetV2 = 4,
}

/// <summary>Mirrors <c>TetraJet.Format</c>.</summary>
internal enum FormatKind
{
    BF16 = 0,
    MXFP4 = 1,
    NVFP4 = 2,
}

/// <summary>
/// What the generator needs to know about each named recipe (ALGORITHMS.md §3–4): its format, the multiple its
/// features must have and each slot's rounding and RHT. A test checks these against <c>TetraJet.Recipe</c>.
/// </summary>
internal static class RecipeTable
{
    public const string Nearest = "Nearest";
    public const string Stochastic = "Stochastic";
    public const string EmaGuided = "EmaGuided";

    public static RecipeKind ForFormat(FormatKind format) => format switch
    {
        FormatKind.MXFP4 => RecipeKind.TetraJet,
        FormatKind.NVFP4 => RecipeKind.TetraJetV2,
        _ => RecipeKind.BF16,
    };

    public static FormatKind FormatOf(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling or RecipeKind.TetraJet => FormatKind.MXFP4,
        RecipeKind.NvidiaNvfp4 or RecipeKind.TetraJetV2 => FormatKind.NVFP4,
        _ => FormatKind.BF16,
    };

    /// <summary>32 for MXFP4 blocks, 128 for TetraJet-v2's outer NVFP4 block, 16 for NVIDIA's per-tensor NVFP4.</summary>
    public static int FeatureMultiple(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling or RecipeKind.TetraJet => 32,
        RecipeKind.TetraJetV2 => 128,
        RecipeKind.NvidiaNvfp4 => 16,
        _ => 1,
    };

    /// <summary>The block description used in messages and comments.</summary>
    public static string BlockDescription(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling or RecipeKind.TetraJet => "MXFP4 blocks of 32",
        RecipeKind.TetraJetV2 => "TetraJet-v2 NVFP4 outer blocks of 128",
        RecipeKind.NvidiaNvfp4 => "NVIDIA NVFP4 blocks of 16",
        _ => "no blocks",
    };

    /// <summary>Rounding of slots Q1..Q6 (index 0..5), Q-EMA applied to Q2.</summary>
    public static string Rounding(RecipeKind recipe, int slot, bool qEma)
    {
        if (slot == 1 && qEma) return EmaGuided;
        return recipe switch
        {
            RecipeKind.NvidiaNvfp4 => slot is 0 or 1 or 3 or 5 ? Nearest : Stochastic,
            _ => slot is 0 or 1 ? Nearest : Stochastic,
        };
    }

    /// <summary>Whether slot Q1..Q6 (index 0..5) applies the random Hadamard transform.</summary>
    public static bool Hadamard(RecipeKind recipe, int slot) => recipe switch
    {
        RecipeKind.TetraJetV2 => slot >= 2,
        RecipeKind.NvidiaNvfp4 => slot >= 4,
        _ => false,
    };

    public static string DisplayName(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling => "Microscaling MXFP4",
        RecipeKind.TetraJet => "TetraJet MXFP4",
        RecipeKind.NvidiaNvfp4 => "NVIDIA NVFP4",
        RecipeKind.TetraJetV2 => "TetraJet-v2 NVFP4",
        _ => "BF16",
    };
}
