using System.Collections.Generic;
using System.Globalization;

namespace TetraJet.Generators;

/// <summary>
/// One linear-layer configuration: a named recipe plus the options that change it. Equal configurations
/// (across all classes of a compilation) share one generated config struct and autograd function.
/// </summary>
internal sealed record ConfigSpec(
    RecipeKind Recipe,
    bool QEma,
    double EmaDecay,
    bool QRamping,
    bool OsciReset,
    double OsciResetThreshold,
    bool OsciResetLean,
    double OsciResetLeanFraction,
    bool OutControl,
    double OutlierFraction)
{
    public const double DefaultEmaDecay = 0.998;
    public const double DefaultOsciResetThreshold = 8;
    public const double DefaultOsciResetLeanFraction = 0.1;
    public const double DefaultOutlierFraction = 0.1;

    public static ConfigSpec Bf16 { get; } = Plain(RecipeKind.BF16);

    public static ConfigSpec Plain(RecipeKind recipe)
        => new(recipe, false, DefaultEmaDecay, false, false, DefaultOsciResetThreshold, false, DefaultOsciResetLeanFraction, false, DefaultOutlierFraction);

    public FormatKind Format => RecipeTable.FormatOf(Recipe);

    public int FeatureMultiple => RecipeTable.FeatureMultiple(Recipe);

    /// <summary>Readable and deterministic, e.g. <c>Nvfp4_TetraJetV2_OsciReset</c> or <c>Mxfp4_TetraJet_QEma_EmaDecay0p99</c>.</summary>
    public string Name
    {
        get
        {
            var parts = new List<string>
            {
                Recipe == RecipeKind.BF16 ? "Bf16" : Format == FormatKind.MXFP4 ? "Mxfp4_" + Recipe : "Nvfp4_" + Recipe,
            };
            if (QEma) parts.Add("QEma");
            if (EmaDecay != DefaultEmaDecay) parts.Add("EmaDecay" + NumberName(EmaDecay));
            if (QRamping) parts.Add("QRamping");
            if (OsciReset) parts.Add("OsciReset");
            if (OsciResetThreshold != DefaultOsciResetThreshold) parts.Add("OsciResetThreshold" + NumberName(OsciResetThreshold));
            if (OsciResetLean) parts.Add("OsciResetLean");
            if (OsciResetLeanFraction != DefaultOsciResetLeanFraction) parts.Add("OsciResetLeanFraction" + NumberName(OsciResetLeanFraction));
            if (OutControl) parts.Add("OutControl");
            if (OutlierFraction != DefaultOutlierFraction) parts.Add("OutlierFraction" + NumberName(OutlierFraction));
            return string.Join("_", parts);
        }
    }

    /// <summary>The option assignments of the <c>with { ... }</c> expression, empty when none differs from the recipe's defaults.</summary>
    public IReadOnlyList<string> OptionAssignments
    {
        get
        {
            var options = new List<string>();
            if (QEma) options.Add("QEma = true");
            if (EmaDecay != DefaultEmaDecay) options.Add("EmaDecay = " + Literal(EmaDecay));
            if (QRamping) options.Add("QRamping = true");
            if (OsciReset) options.Add("OsciReset = true");
            if (OsciResetThreshold != DefaultOsciResetThreshold) options.Add("OsciResetThreshold = " + Literal(OsciResetThreshold));
            if (OsciResetLean) options.Add("OsciResetLean = true");
            if (OsciResetLeanFraction != DefaultOsciResetLeanFraction) options.Add("OsciResetLeanFraction = " + Literal(OsciResetLeanFraction));
            if (OutControl) options.Add("OutControl = true");
            if (OutlierFraction != DefaultOutlierFraction) options.Add("OutlierFraction = " + Literal(OutlierFraction));
            return options;
        }
    }

    /// <summary>A human description for comments, e.g. "TetraJet-v2 NVFP4, OsciReset (τ = 8)".</summary>
    public string Description
    {
        get
        {
            var text = RecipeTable.DisplayName(Recipe);
            if (QEma) text += ", Q-EMA (β = " + Literal(EmaDecay) + ")";
            if (QRamping) text += ", Q-Ramping";
            if (OsciReset) text += ", OsciReset (τ = " + Literal(OsciResetThreshold) + (OsciResetLean ? ", lean: " + Literal(OsciResetLeanFraction) + " of W" : "") + ")";
            if (OutControl) text += ", OutControl (" + Literal(OutlierFraction) + " of K in MXFP8)";
            return text;
        }
    }

    /// <summary>A C# double literal that round-trips.</summary>
    public static string Literal(double value)
    {
        if (double.IsNaN(value)) return "double.NaN";
        if (double.IsPositiveInfinity(value)) return "double.PositiveInfinity";
        if (double.IsNegativeInfinity(value)) return "double.NegativeInfinity";
        return value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>A number as identifier characters: 0.995 → 0p995, -1 → m1, 1E-05 → 1em05.</summary>
    private static string NumberName(double value)
    {
        if (double.IsNaN(value)) return "NaN";
        if (double.IsInfinity(value)) return value > 0 ? "Inf" : "mInf";
        return value.ToString("R", CultureInfo.InvariantCulture)
            .Replace(".", "p").Replace("-", "m").Replace("+", "").Replace("E", "e");
    }
}
