using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

/// <summary>Every diagnostic of the TetraJet analyzers; docs/DSL.md has a section for each.</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "TetraJet.Quantization";

    /// <summary>The project's repository: help links open the diagnostic's section of docs/DSL.md there.</summary>
    public const string RepositoryUrl = "https://github.com/tetrajet/TetraJet.NET";

    /// <summary>E.g. <c>https://github.com/tetrajet/TetraJet.NET/blob/main/docs/DSL.md#tj1001</c>: the section headed "TJ1001".</summary>
    public static string HelpLink(string id) => RepositoryUrl + "/blob/main/docs/DSL.md#" + id.ToLowerInvariant();

    private static DiagnosticDescriptor Error(string id, string title, string message)
        => new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true, helpLinkUri: HelpLink(id));

    private static DiagnosticDescriptor Warning(string id, string title, string message)
        => new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, helpLinkUri: HelpLink(id));

    public static readonly DiagnosticDescriptor ClassNotPartial = Error(
        DiagnosticIds.ClassNotPartial,
        "Quantized model type must be partial",
        "Type '{0}' {1} but is not partial; add the 'partial' modifier to '{0}' so that the generator can add the layers");

    public static readonly DiagnosticDescriptor NotAModule = Error(
        DiagnosticIds.NotAModule,
        "Quantized model type must be a TorchSharp module",
        "Type '{0}' declares [Linear] properties but does not derive from TorchSharp.torch.nn.Module; derive it from nn.Module<Tensor, Tensor> (or another Module) so that its layers can be registered");

    public static readonly DiagnosticDescriptor FeaturesNotMultipleOfBlock = Error(
        DiagnosticIds.FeaturesNotMultipleOfBlock,
        "Features must be a multiple of the format's block",
        "{0} = {1} of layer '{2}' is not a multiple of {3}, the block of its quantizer {4} ({5}); use a multiple of {3} (e.g. {6}), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer");

    public static readonly DiagnosticDescriptor FeaturesNotPositive = Error(
        DiagnosticIds.FeaturesNotPositive,
        "Features must be positive",
        "{0} = {1} of layer '{2}' must be greater than 0; give the layer's real input/output size");

    public static readonly DiagnosticDescriptor EmaDecayOutOfRange = Error(
        DiagnosticIds.EmaDecayOutOfRange,
        "EmaDecay out of range",
        "EmaDecay = {0} is outside (0, 1); use a decay such as 0.998 (the default)");

    public static readonly DiagnosticDescriptor OsciResetThresholdOutOfRange = Error(
        DiagnosticIds.OsciResetThresholdOutOfRange,
        "OsciResetThreshold out of range",
        "OsciResetThreshold = {0} must be greater than 1 (a ratio of quantized to full-precision movement); use e.g. 8 (the default)");

    public static readonly DiagnosticDescriptor OutlierFractionOutOfRange = Error(
        DiagnosticIds.OutlierFractionOutOfRange,
        "OutlierFraction out of range",
        "OutlierFraction = {0} is outside (0, 0.5]; use a fraction of input channels such as 0.1 (the default)");

    public static readonly DiagnosticDescriptor OsciResetLeanFractionOutOfRange = Error(
        DiagnosticIds.OsciResetLeanFractionOutOfRange,
        "OsciResetLeanFraction out of range",
        "OsciResetLeanFraction = {0} is outside (0, 1]; use a fraction of the weight such as 0.1 (the default)");

    public static readonly DiagnosticDescriptor OutControlLeavesTooFewChannels = Error(
        DiagnosticIds.OutControlLeavesTooFewChannels,
        "OutControl on a layer too narrow for it",
        "OutControl on layer '{0}' with inFeatures = {1} and OutlierFraction = {2} would split the input channels into {3} outlier and {4} FP4 channels, but it needs a whole block of 128 in each part (the outliers round up to blocks of 128); give this layer a [Quantize] without OutControl, or at least {5} input features");

    public static readonly DiagnosticDescriptor OptionHasNoEffect = Warning(
        DiagnosticIds.OptionHasNoEffect,
        "Quantization option has no effect",
        "{0} has no effect with recipe {1}: {2}; remove the option or choose a recipe that uses it");

    public static readonly DiagnosticDescriptor InvalidLinearProperty = Error(
        DiagnosticIds.InvalidLinearProperty,
        "[Linear] property has the wrong shape",
        "[Linear] property '{0}' {1}; declare it as 'public partial QLinear {0} {{ get; }}'");

    public static readonly DiagnosticDescriptor SizeMemberNotFound = Error(
        DiagnosticIds.SizeMemberNotFound,
        "Features member not found",
        "{0} of layer '{1}' names '{2}', which is not an int field or property of '{3}'; pass nameof(...) of an int field or property, or a constant");

    public static readonly DiagnosticDescriptor ConstructorSkipsInitialization = Warning(
        DiagnosticIds.ConstructorSkipsInitialization,
        "Constructor never calls InitializeQuantization",
        "This constructor of '{0}' never calls InitializeQuantization(), so its [Linear] layers stay null; call InitializeQuantization() (or InitializeQuantization(recipe)) before RegisterComponents()");

    public static readonly DiagnosticDescriptor QuantizeWithoutLinear = Warning(
        DiagnosticIds.QuantizeWithoutLinear,
        "Quantization attribute has no [Linear] layer to apply to",
        "[{0}] on '{1}' has no effect: '{1}' {2}; remove the attribute, or move it to a [Linear] property or to the class that declares them");

    public static readonly DiagnosticDescriptor FormatNotARecipe = Error(
        DiagnosticIds.FormatNotARecipe,
        "Format names no recipe",
        "Format.{0} names no recipe; [Quantize] takes Format.BF16, Format.MXFP4, Format.NVFP4 or a named recipe such as Recipe.NvidiaNvfp4; to put single quantizers in {0}, add [QuantizeSlot(Slot.Q1, Format.{0})] (any slot) over a recipe");

    public static readonly DiagnosticDescriptor HadamardNotPaired = Error(
        DiagnosticIds.HadamardNotPaired,
        "Random Hadamard transform on one operand of a GEMM",
        "{0} applies the random Hadamard transform but {1} does not, so the transforms on the two operands of the {2} GEMM would not cancel; {3}");

    public static readonly DiagnosticDescriptor NearestInBackward = Warning(
        DiagnosticIds.NearestInBackward,
        "Backward quantizer rounds to nearest",
        "{0} rounds to nearest, which biases the gradient (only stochastic rounding is unbiased); use Rounding = Rounding.Stochastic, or suppress TJ1017 where the bias is what you measure");

    public static readonly DiagnosticDescriptor EmaGuidedNotASlotChoice = Error(
        DiagnosticIds.EmaGuidedNotASlotChoice,
        "EMA-guided rounding is not a per-slot choice",
        "Rounding.EmaGuided is not a per-slot choice: Q-EMA guides Q2 when the recipe sets QEma; use Rounding.Nearest or Rounding.Stochastic here, and [Quantize(..., QEma = true)] for Q-EMA");

    public static readonly DiagnosticDescriptor SlotOverriddenTwice = Error(
        DiagnosticIds.SlotOverriddenTwice,
        "Slot overridden twice",
        "{0} is overridden twice on '{1}'; keep one [QuantizeSlot(Slot.{0}, ...)] (a property's override of a slot already replaces the class's)");

    public static readonly DiagnosticDescriptor SlotOptionHasNoEffect = Warning(
        DiagnosticIds.SlotOptionHasNoEffect,
        "[QuantizeSlot] option has no effect",
        "{0} has no effect with Format.{1}: {2}; remove the option");

    public static readonly DiagnosticDescriptor HadamardInForward = Error(
        DiagnosticIds.HadamardInForward,
        "Random Hadamard transform in a forward quantizer",
        "{0} cannot apply the random Hadamard transform: the forward operands X̂ and Ŵ are kept for backward untransformed; remove Hadamard = true");
}
