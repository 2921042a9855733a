using TetraJet.Diagnostics;
using TetraJet.Plans;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>The gradient-to-noise diagnostic (docs/DIAGNOSTICS.md): dW a second time, on the steps a caller samples.</summary>
public sealed partial class QLinear
{
    /// <summary>
    /// While set, each backward of this layer also computes dW from the same dY and X̂ with independent SR streams
    /// and RHT signs (<see cref="LayerStreams.NoiseDrawKey"/>) and leaves the estimate in <see cref="LastGradientNoise"/>.
    /// The step's own gradient, streams and counters are untouched, so a run's numbers do not depend on it. Off by
    /// default: set it before a sampled step and clear it after, so that the other steps cost nothing extra.
    /// </summary>
    public bool SampleGradientNoise { get; set; }

    /// <summary>The estimate of the last backward that ran with <see cref="SampleGradientNoise"/>, or null.</summary>
    public GradientNoiseEstimate? LastGradientNoise { get; set; }

    /// <summary>
    /// Whether this layer's weight gradient varies with the random streams: Q5 or Q6 rounds stochastically or applies
    /// the random Hadamard transform. Otherwise two draws would agree bit for bit and the noise is zero.
    /// </summary>
    public bool HasWgradNoise => IsRandom(Recipe.Q5) || IsRandom(Recipe.Q6);

    static bool IsRandom(QuantizerSlot s) => s.IsQuantized && (s.Spec.Rounding == Rounding.Stochastic || s.Hadamard);

    /// <summary>Called by backward with the step's own dW: records the estimate from a second draw.</summary>
    internal void MeasureGradientNoise(LinearPlan plan, LinearStep step, Tensor dy, Tensor dw)
    {
        if (!HasWgradNoise)
        {
            using var _ = no_grad();
            using var d = dw.detach().to(ScalarType.Float64);
            LastGradientNoise = new GradientNoiseEstimate(d.square().sum().item<double>(), 0);
            return;
        }
        using var scope = NewDisposeScope();
        step.NoiseDraw = true;
        try
        {
            var (_, dw2) = plan.Backward(step, dy);
            LastGradientNoise = GradientNoiseEstimate.FromDraws(dw, dw2);
        }
        finally
        {
            step.NoiseDraw = false;
        }
    }
}
