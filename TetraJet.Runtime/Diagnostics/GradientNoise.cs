using static TorchSharp.torch;

namespace TetraJet.Diagnostics;

/// <summary>
/// One layer's gradient-to-noise estimate on a sampled step: from two weight gradients dW₁ and dW₂ computed from the
/// same dY and X̂ with independent random draws (SR and RHT signs; docs/DIAGNOSTICS.md). With g = E[dW] (SR is
/// unbiased) and independent noises n₁, n₂ of equal distribution, E⟨dW₁, dW₂⟩ = ‖g‖² and E‖dW₁ − dW₂‖² = 2·E‖n‖²: both
/// estimates below are unbiased; their ratio is consistent (the norms are sums over N·K elements).
/// </summary>
/// <param name="GradientSquared">⟨dW₁, dW₂⟩: the estimate of ‖g‖²; negative when the noise swamps the gradient.</param>
/// <param name="NoiseSquared">‖dW₁ − dW₂‖² / 2: the estimate of E‖n‖², the random noise of one weight gradient.</param>
public readonly record struct GradientNoiseEstimate(double GradientSquared, double NoiseSquared)
{
    /// <summary>
    /// The threshold of "FP4 All the Way" (Chmiel et al., 2025): once ‖g‖ / ‖n‖ stays below about √3, stochastic
    /// rounding's noise dominates and training stops making progress.
    /// </summary>
    public static readonly double Threshold = Math.Sqrt(3);

    /// <summary>
    /// ‖g‖ / ‖n‖ (the negative part of the ‖g‖² estimate clipped to 0); +∞ when the layer's weight gradient has no
    /// random quantizer (two draws agree bit for bit).
    /// </summary>
    public double Ratio => NoiseSquared > 0 ? Math.Sqrt(Math.Max(GradientSquared, 0) / NoiseSquared)
        : GradientSquared > 0 ? double.PositiveInfinity : double.NaN;

    /// <summary>The estimate from two draws of one weight gradient (same shape; summed in float64).</summary>
    public static GradientNoiseEstimate FromDraws(Tensor dw1, Tensor dw2)
    {
        if (!dw1.shape.SequenceEqual(dw2.shape))
            throw new ArgumentException($"the two draws differ in shape: [{string.Join(", ", dw1.shape)}] and [{string.Join(", ", dw2.shape)}]");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = dw1.detach().to(ScalarType.Float64);
        var b = dw2.detach().to(ScalarType.Float64);
        double inner = a.mul(b).sum().item<double>();
        double diff = a.sub(b).square().sum().item<double>();
        return new GradientNoiseEstimate(inner, diff / 2);
    }
}
