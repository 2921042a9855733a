namespace TetraJet;

/// <summary>The element format a <see cref="QuantizeAttribute"/> asks for.</summary>
/// <remarks><see cref="MXFP4"/> selects the TetraJet recipe, <see cref="NVFP4"/> the TetraJet-v2 recipe.</remarks>
public enum Format
{
    BF16,
    MXFP4,
    NVFP4,
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
