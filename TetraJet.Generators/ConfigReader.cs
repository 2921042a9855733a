using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

/// <summary>
/// Reads <c>[Quantize]</c> and <c>[QuantizeSlot]</c> into configurations. The generator calls it without a
/// <see cref="DiagnosticBag"/> and only learns whether a configuration is valid; the analyzer calls the same code with
/// one, so that the two can never disagree about what is an error.
/// </summary>
internal static class ConfigReader
{
    /// <summary>A <c>[QuantizeSlot]</c> read, with the attribute it came from (for diagnostic locations; never in a spec).</summary>
    internal readonly struct AppliedOverride
    {
        public AppliedOverride(SlotOverrideSpec spec, AttributeData attribute)
        {
            Spec = spec;
            Attribute = attribute;
        }

        public SlotOverrideSpec Spec { get; }
        public AttributeData Attribute { get; }
    }

    /// <summary>The <c>[QuantizeSlot]</c> attributes of one class or property; not valid when one has errors or a slot repeats.</summary>
    internal sealed class SlotOverrides
    {
        public List<AppliedOverride> Items { get; } = new();
        public bool Valid { get; set; } = true;
    }

    /// <summary>A layer's effective configuration; <see cref="Config"/> is null when its attributes have errors.</summary>
    /// <param name="Overrides">The overrides that apply, by slot: what the run-time recipe overload applies over its recipe.</param>
    internal sealed record LayerConfig(ConfigSpec? Config, bool HasOwnQuantize, EquatableArray<SlotOverrideSpec> Overrides);

    // ---- [Quantize] ----

    /// <summary>A <c>[Quantize]</c> attribute as a configuration (the recipe's own slots); null when it cannot be read or has errors.</summary>
    public static ConfigSpec? ReadQuantize(AttributeData attribute, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var constructor = attribute.AttributeConstructor;
        if (constructor is null || constructor.Parameters.Length != 1 || attribute.ConstructorArguments.Length != 1) return null;
        if (attribute.ConstructorArguments[0].Value is not int raw) return null;

        RecipeKind recipe;
        switch (constructor.Parameters[0].Type.Name)
        {
            case "Format" when Enum.IsDefined(typeof(FormatKind), raw):
                if (RecipeTable.ForFormat((FormatKind)raw) is not { } formatRecipe)
                {
                    diagnostics?.Add(DiagnosticDescriptors.FormatNotARecipe, AttributeSyntaxes.WhereArgument(attribute, 0, cancellationToken), ((FormatKind)raw).ToString());
                    return null;
                }
                recipe = formatRecipe;
                break;
            case "RecipeId" when Enum.IsDefined(typeof(RecipeKind), raw):
                recipe = (RecipeKind)raw;
                break;
            default:
                return null;
        }

        var named = NamedArguments(attribute);
        bool Flag(string name) => named.TryGetValue(name, out var value) && value.Value is bool b && b;
        double Number(string name, double fallback) => named.TryGetValue(name, out var value) ? ToDouble(value.Value, fallback) : fallback;
        Location? Where(string name) => AttributeSyntaxes.Where(attribute, name, cancellationToken);

        var qEma = Flag("QEma");
        var qRamping = Flag("QRamping");
        var osciReset = Flag("OsciReset");
        var osciResetLean = Flag("OsciResetLean");
        var outControl = Flag("OutControl");
        var emaDecay = Number("EmaDecay", ConfigSpec.DefaultEmaDecay);
        var threshold = Number("OsciResetThreshold", ConfigSpec.DefaultOsciResetThreshold);
        var leanFraction = Number("OsciResetLeanFraction", ConfigSpec.DefaultOsciResetLeanFraction);
        var outliers = Number("OutlierFraction", ConfigSpec.DefaultOutlierFraction);
        var ocp = named.TryGetValue("ScaleRule", out var rule) && rule.Value is int r && r == (int)ScaleRuleKind.Ocp;
        var fp8Gemm = named.TryGetValue("Gemm", out var gemm) && gemm.Value is int g && g == (int)GemmKind.FP8;

        var format = RecipeTable.FormatOf(recipe);
        var recipeName = recipe.ToString();
        var valid = true;

        // Range errors.
        if (named.ContainsKey("EmaDecay") && !(emaDecay > 0 && emaDecay < 1))
        {
            diagnostics?.Add(DiagnosticDescriptors.EmaDecayOutOfRange, Where("EmaDecay"), ConfigSpec.Literal(emaDecay));
            valid = false;
        }
        if (named.ContainsKey("OsciResetThreshold") && !(threshold > 1))
        {
            diagnostics?.Add(DiagnosticDescriptors.OsciResetThresholdOutOfRange, Where("OsciResetThreshold"), ConfigSpec.Literal(threshold));
            valid = false;
        }
        if (named.ContainsKey("OsciResetLeanFraction") && !(leanFraction > 0 && leanFraction <= 1))
        {
            diagnostics?.Add(DiagnosticDescriptors.OsciResetLeanFractionOutOfRange, Where("OsciResetLeanFraction"), ConfigSpec.Literal(leanFraction));
            valid = false;
        }
        if (named.ContainsKey("OutlierFraction") && !(outliers > 0 && outliers <= 0.5))
        {
            diagnostics?.Add(DiagnosticDescriptors.OutlierFractionOutOfRange, Where("OutlierFraction"), ConfigSpec.Literal(outliers));
            valid = false;
        }

        // Options that the recipe ignores: warnings, the configuration keeps them as written.
        void NoEffect(string option, string why)
            => diagnostics?.Add(DiagnosticDescriptors.OptionHasNoEffect, Where(option), option, recipeName, why);

        if (format != FormatKind.MXFP4)
        {
            if (qEma) NoEffect("QEma", "Q-EMA guides the rounding of MXFP4 weights only");
            if (qRamping) NoEffect("QRamping", "Q-Ramping damps MXFP4 weight oscillation only");
            if (ocp) NoEffect("ScaleRule", "the OCP scale rule applies to MXFP4 blocks only");
            if (fp8Gemm) NoEffect("Gemm", "FP8 GEMMs multiply MXFP4 operands only (NVFP4's two-level scales do not fit FP8)");
        }
        if (format == FormatKind.BF16)
        {
            if (osciReset) NoEffect("OsciReset", "BF16 weights are not quantized, so they do not oscillate");
            if (outControl) NoEffect("OutControl", "BF16 inputs are not quantized, so there are no outliers to keep");
        }
        if (named.ContainsKey("EmaDecay") && !qEma) NoEffect("EmaDecay", "it is read only when QEma = true");
        if (named.ContainsKey("OsciResetThreshold") && !osciReset) NoEffect("OsciResetThreshold", "it is read only when OsciReset = true");
        if (osciResetLean && !osciReset) NoEffect("OsciResetLean", "it is read only when OsciReset = true");
        if (named.ContainsKey("OsciResetLeanFraction") && !osciResetLean) NoEffect("OsciResetLeanFraction", "it is read only when OsciResetLean = true");
        if (named.ContainsKey("OutlierFraction") && !outControl) NoEffect("OutlierFraction", "it is read only when OutControl = true");

        if (!valid) return null;

        // The Microscaling recipe is TetraJet's MXFP4 with the OCP scale rule.
        if (ocp && recipe == RecipeKind.TetraJet) recipe = RecipeKind.Microscaling;

        return new ConfigSpec(recipe, qEma, emaDecay, qRamping, osciReset, threshold, osciResetLean, leanFraction, outControl, outliers,
            RecipeTable.Slots(recipe), fp8Gemm);
    }

    // ---- [QuantizeSlot] ----

    /// <summary>One <c>[QuantizeSlot]</c>; null when it cannot be read or has errors. Options the format ignores are dropped (with a warning).</summary>
    public static SlotOverrideSpec? ReadSlot(AttributeData attribute, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var constructor = attribute.AttributeConstructor;
        if (constructor is null || constructor.Parameters.Length != 2 || attribute.ConstructorArguments.Length != 2) return null;
        if (attribute.ConstructorArguments[0].Value is not int slot || slot < 1 || slot > 6) return null;
        if (attribute.ConstructorArguments[1].Value is not int formatRaw || !Enum.IsDefined(typeof(FormatKind), formatRaw)) return null;
        var index = slot - 1;
        var name = SlotSpec.Names[index];
        var format = (FormatKind)formatRaw;

        var named = NamedArguments(attribute);
        RoundingKind? rounding = null;
        bool? hadamard = null;
        ScaleRuleKind? scaleRule = null;
        if (named.TryGetValue("Rounding", out var roundingValue))
        {
            if (roundingValue.Value is not int v || !Enum.IsDefined(typeof(RoundingKind), v)) return null;
            rounding = (RoundingKind)v;
        }
        if (named.TryGetValue("Hadamard", out var hadamardValue))
        {
            if (hadamardValue.Value is not bool b) return null;
            hadamard = b;
        }
        if (named.TryGetValue("ScaleRule", out var ruleValue))
        {
            if (ruleValue.Value is not int v || !Enum.IsDefined(typeof(ScaleRuleKind), v)) return null;
            scaleRule = (ScaleRuleKind)v;
        }
        Location? Where(string option) => AttributeSyntaxes.Where(attribute, option, cancellationToken);

        if (rounding == RoundingKind.EmaGuided)
        {
            diagnostics?.Add(DiagnosticDescriptors.EmaGuidedNotASlotChoice, Where("Rounding"));
            return null;
        }

        void NoEffect(string option, string why)
            => diagnostics?.Add(DiagnosticDescriptors.SlotOptionHasNoEffect, Where(option), option, format.ToString(), why);

        if (format == FormatKind.BF16)
        {
            if (rounding is not null) NoEffect("Rounding", "a BF16 quantizer passes its input through unrounded");
            if (hadamard is not null) NoEffect("Hadamard", "a BF16 quantizer applies no transform");
            rounding = null;
            hadamard = null;
        }
        if (format != FormatKind.MXFP4 && scaleRule is not null)
        {
            NoEffect("ScaleRule", "only MXFP4 blocks have a scale rule");
            scaleRule = null;
        }
        if (hadamard == true && index < 2)
        {
            diagnostics?.Add(DiagnosticDescriptors.HadamardInForward, Where("Hadamard"), name);
            return null;
        }
        return new SlotOverrideSpec(index, format, rounding, hadamard, scaleRule);
    }

    /// <summary>The <c>[QuantizeSlot]</c> attributes of <paramref name="target"/> (a class or a property), at most one per slot.</summary>
    public static SlotOverrides ReadSlots(ISymbol target, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var result = new SlotOverrides();
        foreach (var attribute in target.GetAttributes())
        {
            if (!AttributeSyntaxes.Is(attribute, KnownNames.QuantizeSlotAttribute)) continue;
            cancellationToken.ThrowIfCancellationRequested();
            var spec = ReadSlot(attribute, diagnostics, cancellationToken);
            if (spec is null)
            {
                result.Valid = false;
                continue;
            }
            if (result.Items.Any(i => i.Spec.Index == spec.Index))
            {
                diagnostics?.Add(DiagnosticDescriptors.SlotOverriddenTwice, AttributeSyntaxes.Where(attribute, null, cancellationToken),
                    SlotSpec.Names[spec.Index], target.Name);
                result.Valid = false;
                continue;
            }
            result.Items.Add(new AppliedOverride(spec, attribute));
        }
        return result;
    }

    // ---- Effective configurations ----

    /// <summary>
    /// The configuration of a <c>[Linear]</c> property: its own <c>[Quantize]</c> with its own overrides; or the class's
    /// <c>[Quantize]</c> (BF16 without one) with the class's overrides, over which the property's replace the same slots.
    /// </summary>
    public static LayerConfig ReadLayer(IPropertySymbol property, INamedTypeSymbol type, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var own = AttributeSyntaxes.Find(property.GetAttributes(), KnownNames.QuantizeAttribute);
        var propertySlots = ReadSlots(property, diagnostics, cancellationToken);
        var valid = propertySlots.Valid;
        ConfigSpec? baseConfig;
        List<AppliedOverride> applied;   // by precedence: the property's first
        if (own is not null)
        {
            baseConfig = ReadQuantize(own, diagnostics, cancellationToken);
            applied = propertySlots.Items;
        }
        else
        {
            var classLevel = AttributeSyntaxes.Find(type.GetAttributes(), KnownNames.QuantizeAttribute);
            baseConfig = classLevel is null ? ConfigSpec.Bf16 : ReadQuantize(classLevel, diagnostics, cancellationToken);
            var classSlots = ReadSlots(type, diagnostics, cancellationToken);
            valid &= classSlots.Valid;
            applied = propertySlots.Items
                .Concat(classSlots.Items.Where(c => !propertySlots.Items.Any(p => p.Spec.Index == c.Spec.Index)))
                .ToList();
        }

        var overrides = applied.Select(a => a.Spec).OrderBy(s => s.Index).ToEquatableArray();
        if (baseConfig is null) return new LayerConfig(null, own is not null, overrides);
        var config = baseConfig.WithOverrides(overrides);
        valid &= CheckSlots(config, applied, diagnostics, cancellationToken);
        return new LayerConfig(valid ? config : null, own is not null, overrides);
    }

    /// <summary>The class's own configuration (its <c>[Quantize]</c> and <c>[QuantizeSlot]</c>s), checked even where no layer uses it.</summary>
    public static void CheckClass(INamedTypeSymbol type, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        var classLevel = AttributeSyntaxes.Find(type.GetAttributes(), KnownNames.QuantizeAttribute);
        var baseConfig = classLevel is null ? ConfigSpec.Bf16 : ReadQuantize(classLevel, diagnostics, cancellationToken);
        var slots = ReadSlots(type, diagnostics, cancellationToken);
        if (baseConfig is null) return;
        CheckSlots(baseConfig.WithOverrides(slots.Items.Select(i => i.Spec)), slots.Items, diagnostics, cancellationToken);
    }

    /// <summary>
    /// Checks that need the whole configuration: the random Hadamard transform on both operands of a backward GEMM or
    /// on neither (an error), and overridden backward slots that round to nearest (a warning). False on an error.
    /// </summary>
    private static bool CheckSlots(ConfigSpec config, List<AppliedOverride> applied, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var valid = true;
        foreach (var (a, b, gemm) in new[] { (2, 3, "dgrad"), (4, 5, "wgrad") })
        {
            if (config.Slots[a].AppliesHadamard == config.Slots[b].AppliesHadamard) continue;
            valid = false;
            if (diagnostics is null) continue;
            var (with, without) = config.Slots[a].AppliesHadamard ? (a, b) : (b, a);
            // The named recipes pair their transforms, so an override of one of the two slots is the cause.
            var cause = applied.FirstOrDefault(o => o.Spec.Index == a || o.Spec.Index == b);
            var location = cause.Attribute is null ? null
                : AttributeSyntaxes.Where(cause.Attribute, cause.Spec.Hadamard is null ? null : "Hadamard", cancellationToken);
            var fix = config.Slots[without].IsQuantized
                ? "add Hadamard = true to " + SlotSpec.Names[without] + "'s [QuantizeSlot], or Hadamard = false to " + SlotSpec.Names[with] + "'s"
                : "a BF16 " + SlotSpec.Names[without] + " applies no transform, so add Hadamard = false to " + SlotSpec.Names[with]
                  + " (e.g. [QuantizeSlot(Slot." + SlotSpec.Names[with] + ", Format." + config.Slots[with].Format + ", Hadamard = false)])";
            diagnostics.Add(DiagnosticDescriptors.HadamardNotPaired, location, SlotSpec.Names[with], SlotSpec.Names[without], gemm, fix);
        }

        if (diagnostics is not null)
        {
            foreach (var o in applied)
            {
                var slot = config.Slots[o.Spec.Index];
                if (o.Spec.Index < 2 || !slot.IsQuantized || slot.Rounding != RoundingKind.Nearest) continue;
                diagnostics.Add(DiagnosticDescriptors.NearestInBackward,
                    AttributeSyntaxes.Where(o.Attribute, o.Spec.Rounding is null ? null : "Rounding", cancellationToken), SlotSpec.Names[o.Spec.Index]);
            }
        }
        return valid;
    }

    // ---- Helpers ----

    private static Dictionary<string, TypedConstant> NamedArguments(AttributeData attribute)
    {
        var named = new Dictionary<string, TypedConstant>(StringComparer.Ordinal);
        foreach (var pair in attribute.NamedArguments)
        {
            if (pair.Value.Kind != TypedConstantKind.Error && pair.Value.Value is not null) named[pair.Key] = pair.Value;
        }
        return named;
    }

    private static double ToDouble(object? value, double fallback) => value switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        decimal m => (double)m,
        _ => fallback,
    };
}
