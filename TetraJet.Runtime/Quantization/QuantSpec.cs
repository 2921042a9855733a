namespace TetraJet.Quantization;

/// <summary>Element format of a block quantizer (ALGORITHMS.md §3).</summary>
public enum QuantFormat
{
    /// <summary>No quantization: values pass through (rounded to the caller's dtype).</summary>
    None,
    /// <summary>Block 32, E2M1 elements, E8M0 scale (§3.1).</summary>
    MXFP4,
    /// <summary>TetraJet-v2 double block: inner 16 with E4M3 scale inside outer 128 with FP32 scale (§3.2).</summary>
    NVFP4,
    /// <summary>NVIDIA recipe: inner 16 with E4M3 scale, one FP32 scale per tensor (§3.3).</summary>
    NVFP4Tensor,
    /// <summary>Block 32, E4M3 elements, E8M0 round-up scale (§3.4).</summary>
    MXFP8,
}

/// <summary>The axis of a 2-D [rows, cols] view along which consecutive elements share a scale.</summary>
public enum BlockAxis
{
    /// <summary>Blocks run along the columns (row-major contiguous): the usual features axis.</summary>
    Last,
    /// <summary>Blocks run down the rows (one column at a time): e.g. the token axis of Q5/Q6.</summary>
    First,
}

/// <summary>
/// Everything that fixes a quantizer's numbers except its input and randomness.
/// A value type so that kernels can be specialised on it.
/// </summary>
/// <param name="Format">Element format.</param>
/// <param name="Rounding">Rounding mode.</param>
/// <param name="ScaleRule">MXFP4 scale rule (ignored by the other formats).</param>
/// <param name="Tile16">NVFP4Tensor only: 16×16 two-dimensional blocks (weights of the NVIDIA recipe).</param>
public readonly record struct QuantSpec(
    QuantFormat Format,
    Rounding Rounding = Rounding.Nearest,
    ScaleRule ScaleRule = ScaleRule.TetraJet,
    bool Tile16 = false)
{
    /// <summary>Elements per scale block along the block axis.</summary>
    public int Block => Format switch
    {
        QuantFormat.MXFP4 or QuantFormat.MXFP8 => 32,
        QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor => 16,
        _ => 1,
    };

    /// <summary>The multiple a features axis must have: 32 (MX), 128 (TetraJet-v2 NVFP4), 16 (per-tensor NVFP4).</summary>
    public int FeatureMultiple => Plans.Dataflow.FeatureMultiple((int)Format);

    public override string ToString() => Format == QuantFormat.None
        ? "none"
        : $"{Format}{(Format == QuantFormat.MXFP4 && ScaleRule == ScaleRule.Ocp ? "/ocp" : "")}{(Tile16 ? " 16x16" : "")} {Rounding switch { Rounding.Nearest => "RTN", Rounding.Stochastic => "SR", _ => "EMA" }}";
}
