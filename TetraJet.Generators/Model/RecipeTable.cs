using System.Linq;

namespace TetraJet.Generators;

/// <summary>
/// What the generator needs to know about each named recipe (ALGORITHMS.md §3–4): its format family and its six
/// quantizers, as in <c>TetraJet.Recipe</c>. A test checks these against the runtime's recipes.
/// </summary>
internal static class RecipeTable
{
    /// <summary>The recipe a <c>[Quantize(Format.X)]</c> names; null for formats that name none (TJ1014).</summary>
    public static RecipeKind? ForFormat(FormatKind format) => format switch
    {
        FormatKind.BF16 => RecipeKind.BF16,
        FormatKind.MXFP4 => RecipeKind.TetraJet,
        FormatKind.NVFP4 => RecipeKind.TetraJetV2,
        _ => null,
    };

    /// <summary>The format family (<c>RecipeIds.FormatOf</c>): NVFP4 for both NVFP4 recipes.</summary>
    public static FormatKind FormatOf(RecipeKind recipe) => recipe switch
    {
        RecipeKind.Microscaling or RecipeKind.TetraJet => FormatKind.MXFP4,
        RecipeKind.NvidiaNvfp4 or RecipeKind.TetraJetV2 => FormatKind.NVFP4,
        _ => FormatKind.BF16,
    };

    private static readonly EquatableArray<SlotSpec> Bf16Slots = Enumerable.Repeat(SlotSpec.Bf16(), 6).ToEquatableArray();
    private static readonly EquatableArray<SlotSpec> TetraJetSlots = Mx(ScaleRuleKind.TetraJet);
    private static readonly EquatableArray<SlotSpec> MicroscalingSlots = Mx(ScaleRuleKind.Ocp);

    private static EquatableArray<SlotSpec> Mx(ScaleRuleKind rule) => new[]
    {
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Nearest, rule),
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Nearest, rule),
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Stochastic, rule),
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Stochastic, rule, SourceKind.ForwardDequantized),
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Stochastic, rule),
        SlotSpec.Quantized(FormatKind.MXFP4, RoundingKind.Stochastic, rule, SourceKind.ForwardDequantized),
    }.ToEquatableArray();

    private static readonly EquatableArray<SlotSpec> TetraJetV2Slots = new[]
    {
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Nearest),
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Nearest),
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Stochastic, hadamard: true),
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Stochastic, source: SourceKind.ForwardDequantized, hadamard: true),
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Stochastic, hadamard: true),
        SlotSpec.Quantized(FormatKind.NVFP4, RoundingKind.Stochastic, source: SourceKind.ForwardDequantized, hadamard: true),
    }.ToEquatableArray();

    private static readonly EquatableArray<SlotSpec> NvidiaSlots = new[]
    {
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Nearest),
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Nearest, tile16: true),
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Stochastic),
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Nearest, source: SourceKind.ForwardCodesTransposed, tile16: true),
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Stochastic, hadamard: true),
        SlotSpec.Quantized(FormatKind.NVFP4PerTensor, RoundingKind.Nearest, source: SourceKind.Original, hadamard: true),
    }.ToEquatableArray();

    /// <summary>Quantizers Q1..Q6 (index 0..5) of a named recipe.</summary>
    public static EquatableArray<SlotSpec> Slots(RecipeKind recipe) => recipe switch
    {
        RecipeKind.TetraJet => TetraJetSlots,
        RecipeKind.Microscaling => MicroscalingSlots,
        RecipeKind.TetraJetV2 => TetraJetV2Slots,
        RecipeKind.NvidiaNvfp4 => NvidiaSlots,
        _ => Bf16Slots,
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
