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
/// What the generator needs to know about each named recipe (ALGORITHMS.md §3–4): its format, its six slots and the
/// multiple its features must have. A test checks these against <c>TetraJet.Recipe</c>.
/// </summary>
internal static class RecipeTable
{
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

    /// <summary>32 for MXFP4 blocks, 128 for TetraJet-v2's outer NVFP4 block, 16 for NVIDIA's per-tensor NVFP4: the largest
    /// multiple among the slots along the features axes (Q1–Q4), by the runtime's own rule.</summary>
    public static int FeatureMultiple(RecipeKind recipe)
    {
        var slots = Slots(recipe);
        int multiple = 1;
        for (int i = 0; i < 4; i++) multiple = System.Math.Max(multiple, Plans.Dataflow.FeatureMultiple(slots[i].Format));
        return multiple;
    }

    /// <summary>The block description used in messages and comments.</summary>
    public static string BlockDescription(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling or RecipeKind.TetraJet => "MXFP4 blocks of 32",
        RecipeKind.TetraJetV2 => "TetraJet-v2 NVFP4 outer blocks of 128",
        RecipeKind.NvidiaNvfp4 => "NVIDIA NVFP4 blocks of 16",
        _ => "no blocks",
    };

    /// <summary>The six slots Q1..Q6 of a named recipe (mirrors <c>TetraJet.Recipe</c>; a test compares them).</summary>
    public static SlotModel[] Slots(RecipeKind recipe)
    {
        const int Direct = SlotModel.Direct, Dequantized = SlotModel.ForwardDequantized;
        const int Rtn = Plans.Dataflow.Nearest, Sr = Plans.Dataflow.Stochastic;
        switch (recipe)
        {
            case RecipeKind.Microscaling:
            case RecipeKind.TetraJet:
                bool ocp = recipe == RecipeKind.Microscaling;
                SlotModel Mx(int rounding, int source) => new(Plans.Dataflow.Mxfp4, rounding, ocp, false, false, source);
                return new[] { Mx(Rtn, Direct), Mx(Rtn, Direct), Mx(Sr, Direct), Mx(Sr, Dequantized), Mx(Sr, Direct), Mx(Sr, Dequantized) };
            case RecipeKind.TetraJetV2:
                SlotModel Nv(int rounding, bool rht, int source) => new(Plans.Dataflow.Nvfp4, rounding, false, false, rht, source);
                return new[] { Nv(Rtn, false, Direct), Nv(Rtn, false, Direct), Nv(Sr, true, Direct), Nv(Sr, true, Dequantized), Nv(Sr, true, Direct), Nv(Sr, true, Dequantized) };
            case RecipeKind.NvidiaNvfp4:
                SlotModel Nt(int rounding, bool tile, bool rht, int source) => new(Plans.Dataflow.Nvfp4Tensor, rounding, false, tile, rht, source);
                return new[]
                {
                    Nt(Rtn, false, false, Direct), Nt(Rtn, true, false, Direct), Nt(Sr, false, false, Direct),
                    Nt(Rtn, true, false, SlotModel.ForwardCodesTransposed), Nt(Sr, false, true, Direct), Nt(Rtn, false, true, SlotModel.Original),
                };
            default:
                return new[] { SlotModel.None, SlotModel.None, SlotModel.None, SlotModel.None, SlotModel.None, SlotModel.None };
        }
    }

    public static string DisplayName(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling => "Microscaling MXFP4",
        RecipeKind.TetraJet => "TetraJet MXFP4",
        RecipeKind.NvidiaNvfp4 => "NVIDIA NVFP4",
        RecipeKind.TetraJetV2 => "TetraJet-v2 NVFP4",
        _ => "BF16",
    };
}
