namespace TetraJet.Generators;

/// <summary>
/// One of a configuration's six quantizers as plain data (<c>TetraJet.QuantizerSlot</c>): format, MXFP4 scale rule,
/// rounding, random Hadamard transform, input and 16×16 tiles.
/// </summary>
internal sealed record SlotSpec(FormatKind Format, ScaleRuleKind ScaleRule, RoundingKind Rounding, bool Hadamard, SourceKind Source, bool Tile16)
{
    /// <summary>Slot names by index 0..5.</summary>
    public static readonly string[] Names = { "Q1", "Q2", "Q3", "Q4", "Q5", "Q6" };

    public static SlotSpec Bf16(SourceKind source = SourceKind.Direct)
        => new(FormatKind.BF16, ScaleRuleKind.TetraJet, RoundingKind.Nearest, false, source, false);

    public static SlotSpec Quantized(FormatKind format, RoundingKind rounding, ScaleRuleKind rule = ScaleRuleKind.TetraJet,
        SourceKind source = SourceKind.Direct, bool hadamard = false, bool tile16 = false)
        => new(format, rule, rounding, hadamard, source, tile16);

    public bool IsQuantized => Format != FormatKind.BF16;

    /// <summary>A BF16 slot passes its input through, transform or not.</summary>
    public bool AppliesHadamard => IsQuantized && Hadamard;

    /// <summary>The multiple a features axis must have for this slot's blocks (<c>QuantSpec.FeatureMultiple</c>).</summary>
    public int FeatureMultiple => Plans.Dataflow.FeatureMultiple((int)Format);

    /// <summary>The block description used in messages and comments.</summary>
    public string BlockDescription => Format switch
    {
        FormatKind.MXFP4 => "MXFP4 blocks of 32",
        FormatKind.MXFP8 => "MXFP8 blocks of 32",
        FormatKind.NVFP4 => "TetraJet-v2 NVFP4 outer blocks of 128",
        FormatKind.NVFP4PerTensor => Tile16 ? "NVIDIA NVFP4 16×16 tiles" : "NVIDIA NVFP4 blocks of 16",
        _ => "no blocks",
    };

    /// <summary>As in a configuration name: <c>Mxfp4Rtn</c>, <c>Mxfp4OcpSr</c>, <c>Nvfp4SrRht</c>, <c>Bf16</c>.</summary>
    public string NamePart => !IsQuantized ? "Bf16"
        : FormatName(Format) + (Format == FormatKind.MXFP4 && ScaleRule == ScaleRuleKind.Ocp ? "Ocp" : "")
          + (Rounding == RoundingKind.Nearest ? "Rtn" : "Sr") + (Hadamard ? "Rht" : "");

    /// <summary>As in a description: <c>MXFP4 RTN</c>, <c>MXFP4/ocp SR</c>, <c>NVFP4 SR + RHT</c>, <c>BF16</c>.</summary>
    public string Text => !IsQuantized ? "BF16"
        : Format.ToString() + (Format == FormatKind.MXFP4 && ScaleRule == ScaleRuleKind.Ocp ? "/ocp" : "")
          + (Rounding == RoundingKind.Nearest ? " RTN" : " SR") + (Hadamard ? " + RHT" : "");

    private static string FormatName(FormatKind format) => format switch
    {
        FormatKind.MXFP4 => "Mxfp4",
        FormatKind.NVFP4 => "Nvfp4",
        FormatKind.NVFP4PerTensor => "Nvfp4PerTensor",
        FormatKind.MXFP8 => "Mxfp8",
        _ => "Bf16",
    };

    /// <summary>
    /// The slot that replaces <paramref name="current"/> (slot <paramref name="index"/>) under <paramref name="o"/>:
    /// the rules of <c>Recipe.WithSlot</c>. The input stays, except that the NVIDIA recipe's Q4 (forward codes,
    /// transposed) becomes a re-quantization of Ŵ; defaults come from the recipe slot.
    /// </summary>
    public static SlotSpec Override(int index, SlotSpec current, SlotOverrideSpec o)
    {
        var source = current.Source == SourceKind.ForwardCodesTransposed ? SourceKind.ForwardDequantized : current.Source;
        if (o.Format == FormatKind.BF16) return Bf16(source);
        var rounding = o.Rounding ?? (current.IsQuantized ? current.Rounding : index < 2 ? RoundingKind.Nearest : RoundingKind.Stochastic);
        var hadamard = o.Hadamard ?? current.Hadamard;
        var rule = o.Format != FormatKind.MXFP4 ? ScaleRuleKind.TetraJet
            : o.ScaleRule ?? (current.Format == FormatKind.MXFP4 ? current.ScaleRule : ScaleRuleKind.TetraJet);
        var tile = o.Format == FormatKind.NVFP4PerTensor && current.Tile16 && current.Source != SourceKind.ForwardCodesTransposed;
        return new SlotSpec(o.Format, rule, rounding, hadamard, source, tile);
    }
}

/// <summary>
/// One <c>[QuantizeSlot]</c> as written: the options left out (null) take the recipe slot's value when applied.
/// Options that the format does not read are already dropped.
/// </summary>
/// <param name="Index">0..5 for Q1..Q6.</param>
internal sealed record SlotOverrideSpec(int Index, FormatKind Format, RoundingKind? Rounding, bool? Hadamard, ScaleRuleKind? ScaleRule)
{
    /// <summary>The <c>.WithSlot(...)</c> call with the options as written, for recipes known only at run time.</summary>
    public string Call()
    {
        var call = ".WithSlot(global::TetraJet.Slot." + SlotSpec.Names[Index] + ", global::TetraJet.Format." + Format;
        if (Rounding is { } r) call += ", rounding: global::TetraJet.Rounding." + r;
        if (Hadamard is { } h) call += ", hadamard: " + (h ? "true" : "false");
        if (ScaleRule is { } s) call += ", scaleRule: global::TetraJet.ScaleRule." + s;
        return call + ")";
    }
}
