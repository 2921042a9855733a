using System.Text;
using TetraJet.Quantization;

namespace TetraJet;

/// <summary>
/// A fully-quantized training recipe: the six quantizers of a linear layer (ALGORITHMS.md §4) and the
/// oscillation/outlier options (§5). Immutable; make variants with <c>recipe with { QEma = true }</c> and
/// <c>recipe.WithSlot(Slot.Q3, Format.MXFP4)</c>.
/// </summary>
/// <remarks>
/// The constants <see cref="BF16"/>, <see cref="TetraJet"/>, … are <see cref="RecipeId"/> values so that they can be
/// attribute arguments (<c>[Quantize(Recipe.TetraJetV2)]</c>); each converts implicitly to its recipe, so
/// <c>new QLinear(512, 512, Recipe.TetraJet)</c> and <c>Recipe r = Recipe.TetraJet;</c> work as written.
/// </remarks>
public sealed partial record Recipe
{
    public const RecipeId BF16 = RecipeId.BF16;
    public const RecipeId Microscaling = RecipeId.Microscaling;
    public const RecipeId TetraJet = RecipeId.TetraJet;
    public const RecipeId NvidiaNvfp4 = RecipeId.NvidiaNvfp4;
    public const RecipeId TetraJetV2 = RecipeId.TetraJetV2;

    public required string Name { get; init; }
    /// <summary>X along K, forward.</summary>
    public required QuantizerSlot Q1 { get; init; }
    /// <summary>W along K, forward.</summary>
    public required QuantizerSlot Q2 { get; init; }
    /// <summary>dY along N, dgrad.</summary>
    public required QuantizerSlot Q3 { get; init; }
    /// <summary>Ŵ along N, dgrad.</summary>
    public required QuantizerSlot Q4 { get; init; }
    /// <summary>dY along T, wgrad.</summary>
    public required QuantizerSlot Q5 { get; init; }
    /// <summary>X̂ along T, wgrad.</summary>
    public required QuantizerSlot Q6 { get; init; }

    /// <summary>Multiple that K and N must have (largest features block among the slots).</summary>
    public int FeatureMultiple => Math.Max(Math.Max(Q1.Spec.FeatureMultiple, Q2.Spec.FeatureMultiple),
        Math.Max(Math.Max(Q3.Spec.FeatureMultiple, Q4.Spec.FeatureMultiple), Q2.Spec.Tile16 ? 16 : 1));

    public bool IsQuantized => Q1.IsQuantized || Q2.IsQuantized || Q3.IsQuantized || Q4.IsQuantized || Q5.IsQuantized || Q6.IsQuantized;

    /// <summary>Q-EMA (§5): Q2 rounds EMA-guided once 10 EMA steps have been taken.</summary>
    public bool QEma { get; init; }
    public double EmaDecay { get; init; } = 0.998;
    /// <summary>Q-Ramping (§5): AdamW-Ramping with per-element periods from calibration.</summary>
    public bool QRamping { get; init; }
    /// <summary>OsciReset (§5).</summary>
    public bool OsciReset { get; init; }
    public double OsciResetThreshold { get; init; } = 8;
    /// <summary>
    /// Memory-lean OsciReset (§5): each measurement window tracks only the <see cref="OsciResetLeanFraction"/> of W
    /// whose scaled values lie nearest a rounding midpoint, the elements that can flip. Read only with <see cref="OsciReset"/>.
    /// </summary>
    public bool OsciResetLean { get; init; }
    /// <summary>Fraction of W that lean OsciReset tracks, in (0, 1] (§5: 10%).</summary>
    public double OsciResetLeanFraction { get; init; } = 0.1;
    /// <summary>
    /// OutControl (§5): the input channels with the largest summed L2 norms are kept in MXFP8, in whole blocks of 128
    /// channels; a layer whose K would keep fewer than 128 FP4 channels stays plain FP4.
    /// </summary>
    public bool OutControl { get; init; }
    /// <summary>OutControl's f: k = min(⌊K/128⌋·128, ⌈⌊f·K⌋/128⌉·128) outlier channels, f in (0, 0.5] (§5: 0.1).</summary>
    public double OutlierFraction { get; init; } = 0.1;
    /// <summary>OsciReset's S as a fraction of the training steps: the first snapshot is at a multiple of P at or after it (§5: 64%).</summary>
    public double OsciResetStart { get; init; } = 0.64;
    /// <summary>OsciReset period P in steps: a snapshot at every t ≥ S with t mod P = 0 (§5: 200).</summary>
    public int OsciResetPeriod { get; init; } = 200;
    /// <summary>OsciReset window W: the W steps after each snapshot are measured, the next one resets (§5: 50).</summary>
    public int OsciResetWindow { get; init; } = 50;
    /// <summary>OutControl adds the channel norms of the training forwards from this step on (§5: 501; steps count from 1).</summary>
    public int OutControlStart { get; init; } = 501;
    /// <summary>OutControl collects channel norms over this many steps, then fixes the channels (§5: 50).</summary>
    public int OutControlWindow { get; init; } = 50;
    /// <summary>NVIDIA recipe: the last fraction of transformer blocks stays BF16 (applied by models).</summary>
    public double Bf16TailFraction { get; init; }

    public static implicit operator Recipe(RecipeId id) => Get(id);

    /// <summary>The recipe named by <paramref name="id"/>.</summary>
    public static Recipe Get(RecipeId id) => id switch
    {
        RecipeId.BF16 => Bf16Recipe,
        RecipeId.Microscaling => MicroscalingRecipe,
        RecipeId.TetraJet => TetraJetRecipe,
        RecipeId.NvidiaNvfp4 => NvidiaNvfp4Recipe,
        RecipeId.TetraJetV2 => TetraJetV2Recipe,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "unknown recipe"),
    };

    /// <summary>Parses a CLI recipe name: bf16, microscaling, tetrajet, nvidia-nvfp4, tetrajet-v2.</summary>
    public static Recipe Parse(string name) => name.Replace("-", "").Replace("_", "").ToLowerInvariant() switch
    {
        "bf16" => Bf16Recipe,
        "microscaling" or "mx" => MicroscalingRecipe,
        "tetrajet" or "mxfp4" => TetraJetRecipe,
        "nvidianvfp4" or "nvidia" => NvidiaNvfp4Recipe,
        "tetrajetv2" or "nvfp4" => TetraJetV2Recipe,
        _ => throw new ArgumentException($"unknown recipe '{name}'; use bf16, microscaling, tetrajet, nvidia-nvfp4 or tetrajet-v2", nameof(name)),
    };

    static QuantizerSlot MakeSlot(QuantFormat f, Rounding r, ScaleRule rule = ScaleRule.TetraJet, SlotSource src = SlotSource.Direct, bool rht = false, bool tile = false)
        => new(new QuantSpec(f, r, rule, tile), src, rht);

    static readonly Recipe Bf16Recipe = new()
    {
        Name = "BF16",
        Q1 = QuantizerSlot.None, Q2 = QuantizerSlot.None, Q3 = QuantizerSlot.None,
        Q4 = QuantizerSlot.None, Q5 = QuantizerSlot.None, Q6 = QuantizerSlot.None,
    };

    static Recipe Mx(string name, ScaleRule rule) => new()
    {
        Name = name,
        Q1 = MakeSlot(QuantFormat.MXFP4, Rounding.Nearest, rule),
        Q2 = MakeSlot(QuantFormat.MXFP4, Rounding.Nearest, rule),
        Q3 = MakeSlot(QuantFormat.MXFP4, Rounding.Stochastic, rule),
        Q4 = MakeSlot(QuantFormat.MXFP4, Rounding.Stochastic, rule, SlotSource.ForwardDequantized),
        Q5 = MakeSlot(QuantFormat.MXFP4, Rounding.Stochastic, rule),
        Q6 = MakeSlot(QuantFormat.MXFP4, Rounding.Stochastic, rule, SlotSource.ForwardDequantized),
    };

    static readonly Recipe TetraJetRecipe = Mx("TetraJet", ScaleRule.TetraJet);
    static readonly Recipe MicroscalingRecipe = Mx("Microscaling", ScaleRule.Ocp);

    static readonly Recipe TetraJetV2Recipe = new()
    {
        Name = "TetraJet-v2",
        Q1 = MakeSlot(QuantFormat.NVFP4, Rounding.Nearest),
        Q2 = MakeSlot(QuantFormat.NVFP4, Rounding.Nearest),
        Q3 = MakeSlot(QuantFormat.NVFP4, Rounding.Stochastic, rht: true),
        Q4 = MakeSlot(QuantFormat.NVFP4, Rounding.Stochastic, src: SlotSource.ForwardDequantized, rht: true),
        Q5 = MakeSlot(QuantFormat.NVFP4, Rounding.Stochastic, rht: true),
        Q6 = MakeSlot(QuantFormat.NVFP4, Rounding.Stochastic, src: SlotSource.ForwardDequantized, rht: true),
    };

    static readonly Recipe NvidiaNvfp4Recipe = new()
    {
        Name = "NVIDIA-NVFP4",
        Q1 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Nearest),
        Q2 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Nearest, tile: true),
        Q3 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Stochastic),
        Q4 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Nearest, src: SlotSource.ForwardCodesTransposed, tile: true),
        Q5 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Stochastic, rht: true),
        Q6 = MakeSlot(QuantFormat.NVFP4Tensor, Rounding.Nearest, src: SlotSource.Original, rht: true),
        Bf16TailFraction = 0.15,
    };

    /// <summary>The six-slot table of ALGORITHMS.md §4 for this recipe, plus its options; slots that differ from the named recipe read "(overridden)".</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Recipe {Name}");
        sb.AppendLine("| # | operand | block axis | quantizer |");
        sb.AppendLine("|---|---|---|---|");
        void SlotRow(Slot slot, string op, string axis)
        {
            var s = GetSlot(slot);
            var text = slot == Slot.Q2 && QEma && s.IsQuantized ? (s with { Spec = s.Spec with { Rounding = Rounding.EmaGuided } }).ToString()
                : slot == Slot.Q4 && s.Source == SlotSource.ForwardCodesTransposed && !Q2.Spec.Tile16 ? "forward Ŵ of Q2, transposed"
                : s.ToString();
            sb.AppendLine($"| {slot} | {op} | {axis} | {text}{(IsOverridden(slot) ? " (overridden)" : "")} |");
        }
        SlotRow(Slot.Q1, "X", "K");
        SlotRow(Slot.Q2, "W", "K");
        SlotRow(Slot.Q3, "dY", "N");
        SlotRow(Slot.Q4, "Ŵ", "N");
        SlotRow(Slot.Q5, "dY", "T");
        SlotRow(Slot.Q6, "X̂", "T");
        var opts = new List<string>();
        if (QEma) opts.Add($"Q-EMA (β = {EmaDecay})");
        if (QRamping) opts.Add("Q-Ramping");
        if (OsciReset) opts.Add(OsciResetLean ? $"OsciReset (τ = {OsciResetThreshold}, lean: {OsciResetLeanFraction:0.####%} of W nearest a midpoint)" : $"OsciReset (τ = {OsciResetThreshold})");
        if (OutControl) opts.Add($"OutControl ({OutlierFraction:P0} of K in MXFP8)");
        if (Bf16TailFraction > 0) opts.Add($"last {Bf16TailFraction:P0} of blocks in BF16");
        sb.AppendLine("options: " + (opts.Count == 0 ? "none" : string.Join(", ", opts)));
        return sb.ToString();
    }

    public override string ToString() => Name;
}
