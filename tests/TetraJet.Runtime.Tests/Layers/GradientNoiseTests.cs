using TetraJet.Diagnostics;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary>
/// The gradient-to-noise diagnostic (docs/DIAGNOSTICS.md): the two-draw estimator on a planted case, against a
/// Monte-Carlo norm of a layer's SR noise, and the guarantee that sampling leaves the step's own numbers alone.
/// </summary>
public class GradientNoiseTests
{
    const int T = 64, K = 128, N = 128;

    [Fact]
    public void Estimator_recovers_a_planted_gradient_and_noise()
    {
        manual_seed(3);
        var g = randn(N, K, dtype: float64);
        double gSq = g.square().sum().item<double>();   // about N·K = 16384
        // Noise of ‖n‖ = ‖g‖ / 2 (σ² = ‖g‖² / 4 / (N·K)): the ratio is 2.
        double sigma = Math.Sqrt(gSq / 4 / (N * K));
        var e = GradientNoiseEstimate.FromDraws(g + sigma * randn(N, K, dtype: float64), g + sigma * randn(N, K, dtype: float64));
        // ‖n₁ − n₂‖²/2 is σ²·χ²(N·K): relative spread √(2/16384) ≈ 1.1%; ⟨dW₁, dW₂⟩ spreads by ≈ 0.9% of ‖g‖².
        Assert.InRange(e.NoiseSquared / (gSq / 4), 0.94, 1.06);
        Assert.InRange(e.GradientSquared / gSq, 0.95, 1.05);
        Assert.InRange(e.Ratio, 1.9, 2.1);

        // Noise-dominated: the ‖g‖² estimate can go negative; the ratio clips it to 0 rather than failing.
        var zero = zeros(N, K, dtype: float64);
        var pure = GradientNoiseEstimate.FromDraws(zero + randn(N, K, dtype: float64), zero + randn(N, K, dtype: float64));
        Assert.InRange(pure.Ratio, 0, 0.25);   // ⟨n₁, n₂⟩ ~ ±√(N·K): a ratio of order (N·K)^(−1/4) ≈ 0.09 at most
        Assert.Equal(double.PositiveInfinity, GradientNoiseEstimate.FromDraws(g, g.clone()).Ratio);
    }

    /// <summary>
    /// Fixed X, W and dY (Q1 and Q2 round to nearest, so X̂ and Ŵ are fixed too), many seeds: the spread of the
    /// layer's dW over seeds (SR draws and RHT signs) is its noise. The estimates of single sampled steps, averaged, must match it.
    /// </summary>
    [Theory]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.Microscaling)]
    [InlineData(RecipeId.TetraJetV2)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    public void Sampled_estimates_match_the_monte_carlo_noise_of_the_weight_gradient(RecipeId id)
    {
        const int draws = 300;
        manual_seed(11);
        var layer = new QLinear(K, N, id, bias: false) { SampleGradientNoise = true };
        var x = randn(T, K);
        // Columns of dY of very different sizes, as a transformer's are: block scales then matter.
        var dy = randn(T, N) * linspace(0.1, 3, N).unsqueeze(0);
        var grads = new List<Tensor>();
        double estNoise = 0, estGrad = 0;
        for (int s = 0; s < draws; s++)
        {
            layer.Seed = (ulong)s + 1;
            layer.weight.grad?.zero_();
            layer.call(x).backward([dy]);
            grads.Add(layer.weight.grad!.to(float64).clone());
            var e = layer.LastGradientNoise!.Value;
            estNoise += e.NoiseSquared / draws;
            estGrad += e.GradientSquared / draws;
        }
        var all = stack(grads);
        var mean = all.mean([0]);
        double mcNoise = all.sub(mean).square().sum().item<double>() / (draws - 1);
        double mcGrad = mean.square().sum().item<double>() - mcNoise / draws;
        Assert.True(mcNoise > 0.01 * mcGrad, $"{id}: the planted case has too little noise to test ({mcNoise:G4} vs ‖g‖² {mcGrad:G4})");
        Assert.InRange(estNoise / mcNoise, 0.95, 1.05);
        Assert.InRange(estGrad / mcGrad, 0.97, 1.03);
    }

    [Theory]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    public void Sampling_changes_neither_the_gradients_nor_what_the_probe_sees(RecipeId id)
    {
        (Tensor Dw, Tensor Dx, int Probes) Run(bool sample)
        {
            manual_seed(5);
            var layer = new QLinear(K, N, id) { SampleGradientNoise = sample };
            int probes = 0;
            layer.OperandProbe = (_, _) => probes++;
            var x = randn(T, K).requires_grad_();
            var dy = randn(T, N);
            for (int s = 0; s < 3; s++) { layer.weight.grad?.zero_(); x.grad?.zero_(); layer.call(x).backward([dy]); }
            Assert.Equal(sample, layer.LastGradientNoise is not null);
            return (layer.weight.grad!.clone(), x.grad!.clone(), probes);
        }
        var plain = Run(false);
        var sampled = Run(true);
        Assert.True(plain.Dw.equal(sampled.Dw).all().item<bool>(), "dW changed");
        Assert.True(plain.Dx.equal(sampled.Dx).all().item<bool>(), "dX changed");
        Assert.Equal(3 * 6, plain.Probes);
        Assert.Equal(plain.Probes, sampled.Probes);
    }

    [Fact]
    public void Wgrad_without_stochastic_rounding_has_no_noise()
    {
        Recipe rtn = ((Recipe)RecipeId.TetraJet).WithSlot(Slot.Q5, Format.MXFP4, Rounding.Nearest).WithSlot(Slot.Q6, Format.MXFP4, Rounding.Nearest);
        Assert.True(new QLinear(K, N, RecipeId.NvidiaNvfp4).HasWgradNoise);   // Q6 rounds to nearest, but after a random transform
        foreach (var recipe in new[] { rtn, (Recipe)RecipeId.BF16 })
        {
            manual_seed(2);
            var layer = new QLinear(K, N, recipe) { SampleGradientNoise = true };
            Assert.False(layer.HasWgradNoise);
            layer.call(randn(T, K)).backward([randn(T, N)]);
            var e = layer.LastGradientNoise!.Value;
            Assert.Equal(0, e.NoiseSquared);
            Assert.Equal(layer.weight.grad!.to(float64).square().sum().item<double>(), e.GradientSquared, 1e-9 * e.GradientSquared);
            Assert.Equal(double.PositiveInfinity, e.Ratio);
        }
    }
}
