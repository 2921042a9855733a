using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace TetraJet.Generators;

/// <summary>
/// One linear-layer configuration: a named recipe, the options that change it and its six effective quantizers
/// (the recipe's, with <c>[QuantizeSlot]</c> overrides applied). Equal configurations (across all classes of a
/// compilation) share one generated config struct and autograd function.
/// </summary>
/// <param name="Slots">Q1..Q6 at index 0..5.</param>
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
    double OutlierFraction,
    EquatableArray<SlotSpec> Slots,
    bool Fp8Gemm = false)
{
    public const double DefaultEmaDecay = 0.998;
    public const double DefaultOsciResetThreshold = 8;
    public const double DefaultOsciResetLeanFraction = 0.1;
    public const double DefaultOutlierFraction = 0.1;

    public static ConfigSpec Bf16 { get; } = Plain(RecipeKind.BF16);

    public static ConfigSpec Plain(RecipeKind recipe)
        => new(recipe, false, DefaultEmaDecay, false, false, DefaultOsciResetThreshold, false, DefaultOsciResetLeanFraction, false, DefaultOutlierFraction,
            RecipeTable.Slots(recipe));

    /// <summary>The format family of the recipe (overrides aside).</summary>
    public FormatKind Format => RecipeTable.FormatOf(Recipe);

    /// <summary>This configuration with the overrides applied, each over the slot it names.</summary>
    public ConfigSpec WithOverrides(IEnumerable<SlotOverrideSpec> overrides)
    {
        var slots = Slots.ToArray();
        foreach (var o in overrides) slots[o.Index] = SlotSpec.Override(o.Index, slots[o.Index], o);
        return this with { Slots = slots.ToEquatableArray() };
    }

    /// <summary>Whether slot <paramref name="index"/> differs from the named recipe's.</summary>
    public bool IsOverridden(int index) => Slots[index] != RecipeTable.Slots(Recipe)[index];

    /// <summary>
    /// In and out features must be multiples of this: the largest block among Q1–Q4 (Q5 and Q6 block the token axis,
    /// which is padded), as <c>Recipe.FeatureMultiple</c> computes it. The blocks are powers of two, so it is also
    /// their least common multiple.
    /// </summary>
    public int FeatureMultiple => Slots[BindingSlot].FeatureMultiple;

    /// <summary>The first of Q1–Q4 (index 0..3) whose block is <see cref="FeatureMultiple"/>: the one messages name.</summary>
    public int BindingSlot
    {
        get
        {
            var best = 0;
            for (var i = 1; i < 4; i++)
            {
                if (Slots[i].FeatureMultiple > Slots[best].FeatureMultiple) best = i;
            }
            return best;
        }
    }

    /// <summary>Readable and deterministic, e.g. <c>Nvfp4_TetraJetV2_OsciReset</c>, <c>Mxfp4_TetraJet_QEma_EmaDecay0p99</c> or <c>Mxfp4_TetraJet_Q3Mxfp4Rtn</c>.</summary>
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
            if (Fp8Gemm) parts.Add("Fp8Gemm");
            for (var i = 0; i < 6; i++)
            {
                if (IsOverridden(i)) parts.Add(SlotSpec.Names[i] + Slots[i].NamePart);
            }
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
            if (Fp8Gemm) options.Add("Gemm = global::TetraJet.GemmPath.FP8");
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
            if (Fp8Gemm) text += ", FP8 GEMMs";
            for (var i = 0; i < 6; i++)
            {
                if (IsOverridden(i)) text += ", " + SlotSpec.Names[i] + " " + Slots[i].Text;
            }
            return text;
        }
    }

    /// <summary>
    /// The <c>.WithSlot(...)</c> calls that turn the named recipe into this configuration's, one per overridden slot,
    /// every option spelled out so that the call does not depend on the defaults.
    /// </summary>
    public IReadOnlyList<string> OverrideCalls
    {
        get
        {
            var calls = new List<string>();
            for (var i = 0; i < 6; i++)
            {
                if (!IsOverridden(i)) continue;
                var slot = Slots[i];
                var call = ".WithSlot(global::TetraJet.Slot." + SlotSpec.Names[i] + ", global::TetraJet.Format." + slot.Format;
                if (slot.IsQuantized)
                {
                    call += ", global::TetraJet.Rounding." + slot.Rounding + ", hadamard: " + (slot.Hadamard ? "true" : "false");
                    if (slot.Format == FormatKind.MXFP4) call += ", scaleRule: global::TetraJet.ScaleRule." + slot.ScaleRule;
                }
                calls.Add(call + ")");
            }
            return calls;
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
