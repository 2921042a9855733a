namespace TetraJet;

/// <summary>Which tensor cores multiply a layer's quantized operands on CUDA (<see cref="Recipe.Gemm"/>).</summary>
public enum GemmPath
{
    /// <summary>BF16 (or FP32) GEMMs on the dequantized operands: every configuration, every device.</summary>
    BF16 = 0,

    /// <summary>
    /// FP8 tensor cores (Hopper and later) for all-MXFP4 configurations without RHT: every MXFP4 value is an E4M3 code
    /// times a power-of-two scale per row and 128 elements of the reduction axis, so the operands are exact; rows whose
    /// block scales span more than 14 binades are recomputed exactly. Only the accumulation order differs from BF16.
    /// </summary>
    FP8 = 1,
}
