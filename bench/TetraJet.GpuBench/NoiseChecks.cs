using TetraJet;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The gradient-to-noise diagnostic on CUDA (docs/DIAGNOSTICS.md), per recipe and for the FP8 GEMM path: sampling
/// leaves dW, dX and the FP8 counters as they are, and the sampled estimates match a Monte-Carlo norm of the layer's
/// noise (fixed X, W and dY over 200 seeds) within 10% (the noise) and 5% (‖g‖²), as the CPU test does within 5%/3%.
/// </summary>
static class NoiseChecks
{
    const int T = 256, K = 256, N = 256, Draws = 200;

    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var (name, recipe) in new (string, Recipe)[]
        {
            ("TetraJet", RecipeId.TetraJet), ("TetraJet-v2", RecipeId.TetraJetV2), ("NVIDIA-NVFP4", RecipeId.NvidiaNvfp4),
            ("TetraJet FP8 GEMMs", Recipe.Get(RecipeId.TetraJet) with { Gemm = GemmPath.FP8 }),
        })
        {
            yield return Guard($"noise {name}: sampling changes nothing", () => Unchanged(recipe, device));
            yield return Guard($"noise {name}: estimate vs Monte-Carlo", () => MonteCarlo(recipe, device));
        }
    }

    static (string, bool, string) Guard(string name, Func<(bool, string)> check)
    {
        try { var (pass, detail) = check(); return (name, pass, detail); }
        catch (Exception e) { return (name, false, $"{e.GetType().Name}: {e.Message}"); }
    }

    static QLinear Layer(Recipe recipe, Device device)
    {
        manual_seed(11);
        var layer = new QLinear(K, N, recipe, bias: false);
        layer.to(device);
        layer.Autocast = ScalarType.BFloat16;   // as the trainer runs on CUDA
        return layer;
    }

    static (bool, string) Unchanged(Recipe recipe, Device device)
    {
        (Tensor Dw, Tensor Dx, long[] Groups, bool Fp8) Run(bool sample)
        {
            using var _ = no_grad();
            var layer = Layer(recipe, device);
            layer.SampleGradientNoise = sample;
            manual_seed(5);
            var x = randn(T, K).to(device);
            var dy = randn(T, N).to(device);
            for (int s = 0; s < 3; s++)
            {
                using var g = enable_grad();
                var xi = x.clone().requires_grad_();
                layer.weight.grad?.zero_();
                layer.call(xi).backward([dy]);
                if (s == 2) return (layer.weight.grad!.cpu().clone(), xi.grad!.cpu().clone(), layer.Fp8Fallbacks().Select(c => c.Total).ToArray(), layer.LastForwardUsedFp8);
            }
            throw new InvalidOperationException("unreachable");
        }
        var a = Run(false);
        var b = Run(true);
        bool same = a.Dw.equal(b.Dw).all().item<bool>() && a.Dx.equal(b.Dx).all().item<bool>() && a.Groups.SequenceEqual(b.Groups);
        return (same, $"dW, dX and FP8 line counts {(same ? "identical" : "DIFFER")} with sampling on (FP8 GEMMs used: {a.Fp8}; counts {string.Join("/", a.Groups)} vs {string.Join("/", b.Groups)})");
    }

    static (bool, string) MonteCarlo(Recipe recipe, Device device)
    {
        var layer = Layer(recipe, device);
        layer.SampleGradientNoise = true;
        manual_seed(3);
        var x = randn(T, K).to(device);
        var dy = (randn(T, N) * linspace(0.1, 3, N).unsqueeze(0)).to(device);
        var sum = zeros(N, K, dtype: float64, device: device);
        var sumSq = zeros(N, K, dtype: float64, device: device);
        double estNoise = 0, estGrad = 0;
        for (int s = 0; s < Draws; s++)
        {
            using var scope = NewDisposeScope();
            layer.Seed = (ulong)s + 1;
            layer.weight.grad?.zero_();
            layer.call(x).backward([dy]);
            var g = layer.weight.grad!.to(float64);
            sum.add_(g); sumSq.add_(g * g);
            var e = layer.LastGradientNoise!.Value;
            estNoise += e.NoiseSquared / Draws;
            estGrad += e.GradientSquared / Draws;
        }
        var mean = sum / Draws;
        double mcNoise = (sumSq - mean * mean * Draws).sum().item<double>() / (Draws - 1);
        double mcGrad = mean.square().sum().item<double>() - mcNoise / Draws;
        double rn = estNoise / mcNoise, rg = estGrad / mcGrad;
        bool pass = Math.Abs(rn - 1) < 0.10 && Math.Abs(rg - 1) < 0.05 && mcNoise > 0;
        return (pass, $"noise estimate / Monte-Carlo {rn:F4}, ‖g‖² estimate / Monte-Carlo {rg:F4}, ratio ‖g‖/‖n‖ ≈ {Math.Sqrt(mcGrad / mcNoise):F2}");
    }
}
