namespace TetraJet;

/// <summary>
/// Chooses the quantization recipe of a model class (all its <c>[Linear]</c> properties) or of one
/// <c>[Linear]</c> property, which then overrides the class. Read at compile time by the TetraJet generator.
/// <see cref="QuantizeSlotAttribute"/> replaces single quantizers of the recipe chosen here.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class QuantizeAttribute : Attribute
{
    /// <summary>
    /// <see cref="TetraJet.Format.MXFP4"/> → TetraJet, <see cref="TetraJet.Format.NVFP4"/> → TetraJet-v2, BF16 → no quantization.
    /// The other formats name no recipe (the generator reports TJ1014); use them in <see cref="QuantizeSlotAttribute"/>.
    /// </summary>
    public QuantizeAttribute(Format format) { Format = format; Recipe = Recipes.RecipeIds.For(format); }

    /// <summary>A named recipe, e.g. <c>[Quantize(Recipe.TetraJetV2)]</c>.</summary>
    public QuantizeAttribute(RecipeId recipe) { Recipe = recipe; Format = Recipes.RecipeIds.FormatOf(recipe); }

    public Format Format { get; }
    public RecipeId Recipe { get; }

    /// <summary>EMA-guided rounding of the forward weight quantizer (TetraJet Q-EMA).</summary>
    public bool QEma { get; set; }
    /// <summary>Decay β of the Q-EMA weights, in (0, 1). Default 0.998.</summary>
    public double EmaDecay { get; set; } = 0.998;
    /// <summary>Adaptive ramping optimizer (TetraJet Q-Ramping).</summary>
    public bool QRamping { get; set; }
    /// <summary>Reset oscillating master weights to their quantized value (TetraJet-v2 OsciReset).</summary>
    public bool OsciReset { get; set; }
    /// <summary>Ratio τ = D_Q / D_FP above which an element counts as oscillating; greater than 1. Default 8.</summary>
    public double OsciResetThreshold { get; set; } = 8;
    /// <summary>Memory-lean OsciReset: track only the elements nearest a rounding midpoint (needs <see cref="OsciReset"/>).</summary>
    public bool OsciResetLean { get; set; }
    /// <summary>Fraction of the weight that lean OsciReset tracks, in (0, 1]. Default 0.1.</summary>
    public double OsciResetLeanFraction { get; set; } = 0.1;
    /// <summary>Keep the largest input channels in MXFP8 (TetraJet-v2 OutControl).</summary>
    public bool OutControl { get; set; }
    /// <summary>Fraction of input channels treated as outliers, in (0, 0.5]. Default 0.1.</summary>
    public double OutlierFraction { get; set; } = 0.1;
    /// <summary>MXFP4 scale rule; the Microscaling recipe is TetraJet with <see cref="TetraJet.ScaleRule.Ocp"/>.</summary>
    public ScaleRule ScaleRule { get; set; } = ScaleRule.TetraJet;
    /// <summary>The GEMMs' tensor cores on CUDA (<see cref="TetraJet.Recipe.Gemm"/>): FP8 for all-MXFP4 layers without RHT.</summary>
    public GemmPath Gemm { get; set; } = GemmPath.BF16;
}
