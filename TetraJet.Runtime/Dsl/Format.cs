namespace TetraJet;

/// <summary>
/// An element format. <see cref="QuantizeSlotAttribute"/> and <see cref="Recipe.WithSlot"/> take any of them;
/// <see cref="QuantizeAttribute"/> takes the three that name a recipe: <see cref="MXFP4"/> (TetraJet),
/// <see cref="NVFP4"/> (TetraJet-v2) and <see cref="BF16"/>.
/// </summary>
public enum Format
{
    /// <summary>No quantization.</summary>
    BF16 = 0,
    /// <summary>Blocks of 32, E2M1 elements, E8M0 scale, either <see cref="ScaleRule"/> (ALGORITHMS.md §3.1).</summary>
    MXFP4 = 1,
    /// <summary>TetraJet-v2's double block: 16 with an E4M3 scale inside 128 with an FP32 scale (§3.2).</summary>
    NVFP4 = 2,
    /// <summary>NVIDIA's NVFP4: blocks of 16 with E4M3 scales and one FP32 scale per tensor (§3.3). Not a recipe.</summary>
    NVFP4PerTensor = 3,
    /// <summary>Blocks of 32, E4M3 elements, E8M0 round-up scale (§3.4). Not a recipe.</summary>
    MXFP8 = 4,
}

/// <summary>The named recipes; usable as attribute arguments through the constants on <see cref="Recipe"/>.</summary>
public enum RecipeId
{
    BF16,
    Microscaling,
    TetraJet,
    NvidiaNvfp4,
    TetraJetV2,
}

/// <summary>How an MXFP4 block's power-of-two scale is chosen (ALGORITHMS.md §3.1).</summary>
public enum ScaleRule
{
    /// <summary>Smallest s with amax ≤ 6·2^s: nothing saturates (TetraJet).</summary>
    TetraJet,
    /// <summary>s = floor(log2 amax) − 2 (OCP MX v1.0); values above 6·2^s saturate.</summary>
    Ocp,
}
