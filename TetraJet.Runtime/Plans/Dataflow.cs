namespace TetraJet.Plans;

/// <summary>
/// The dataflow decisions of a linear layer's configuration, in one place: which formats a features axis must be a
/// multiple of, which operands are kept in storage form for backward, which backward quantizers read that storage
/// directly, and when one read of dY feeds Q3 and Q5. This file is compiled into the runtime (the unspecialised plan
/// decides with it at run time) and into the source generator (generated plans decide with it at compile time), so
/// both make the same choices. Formats and roundings are passed as the integer values of
/// <c>TetraJet.Quantization.QuantFormat</c> and <c>TetraJet.Rounding</c>, which the generator cannot reference.
/// </summary>
internal static class Dataflow
{
    public const int None = 0, Mxfp4 = 1, Nvfp4 = 2, Nvfp4Tensor = 3, Mxfp8 = 4;
    public const int Nearest = 0, Stochastic = 1, EmaGuided = 2;

    /// <summary>
    /// The multiple a features axis must have for a format (ALGORITHMS.md §3): 32 for MX blocks, 128 for the
    /// TetraJet-v2 outer NVFP4 block, 16 for per-tensor NVFP4, 1 unquantized.
    /// </summary>
    public static int FeatureMultiple(int format) => format switch
    {
        Mxfp4 or Mxfp8 => 32,
        Nvfp4 => 128,
        Nvfp4Tensor => 16,
        _ => 1,
    };

    /// <summary>
    /// Whether an operand quantized along its features axis has a storage form (codes and scales) to keep: FP4, and
    /// MXFP8 (OutControl's outlier channels).
    /// </summary>
    public static bool HasStorage(int format, bool tile16) => !tile16 && format is Mxfp4 or Nvfp4 or Mxfp8;

    /// <summary>
    /// Whether a first-axis quantizer (Q4, Q6) can read its source in storage form in one pass (dequantize, RHT,
    /// quantize), rather than from the dequantized tensor.
    /// </summary>
    public static bool ReadsStorage(int sourceFormat, bool sourceTile16, int targetFormat, bool targetTile16, int targetRounding) =>
        HasStorage(sourceFormat, sourceTile16) && sourceFormat != Mxfp8 && !targetTile16 && targetFormat is Mxfp4 or Nvfp4 && targetRounding != EmaGuided;

    /// <summary>
    /// Whether Q3 (dY along N) and Q5 (dY along T) come from one read of dY: the same block format (MXFP4 or
    /// TetraJet-v2 NVFP4), rounding and scale rule, and the RHT on both or neither (MXFP4: neither). Each keeps its own
    /// SR stream and RHT signs.
    /// </summary>
    public static bool FusesDy(int format3, int rounding3, bool ocp3, bool tile3, bool rht3,
        int format5, int rounding5, bool ocp5, bool tile5, bool rht5) =>
        format3 == format5 && rounding3 == rounding5 && ocp3 == ocp5 && !tile3 && !tile5 && rht3 == rht5
        && rounding3 != EmaGuided
        && (format3 == Nvfp4 || (format3 == Mxfp4 && !rht3));
}
