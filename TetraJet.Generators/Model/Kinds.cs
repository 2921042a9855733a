namespace TetraJet.Generators;

// The generator cannot reference the runtime, so these mirror its enums value for value; a test checks them.

/// <summary>Mirrors <c>TetraJet.RecipeId</c>.</summary>
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
    NVFP4PerTensor = 3,
    MXFP8 = 4,
}

/// <summary>Mirrors <c>TetraJet.Rounding</c>.</summary>
internal enum RoundingKind
{
    Nearest = 0,
    Stochastic = 1,
    EmaGuided = 2,
}

/// <summary>Mirrors <c>TetraJet.ScaleRule</c>.</summary>
internal enum ScaleRuleKind
{
    TetraJet = 0,
    Ocp = 1,
}

/// <summary>Mirrors <c>TetraJet.SlotSource</c>: where a quantizer takes its input from.</summary>
internal enum SourceKind
{
    Direct = 0,
    ForwardDequantized = 1,
    ForwardCodesTransposed = 2,
    Original = 3,
}

/// <summary>Mirrors <c>TetraJet.GemmPath</c>.</summary>
internal enum GemmKind
{
    BF16 = 0,
    FP8 = 1,
}
