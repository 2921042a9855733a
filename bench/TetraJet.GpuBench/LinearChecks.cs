using TetraJet;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// QLinear on CUDA against QLinear on the CPU: the six quantized operands of every recipe must be the same bits
/// (float32 inputs, same seed/step/layer id), and a bf16 forward+backward must be finite and close.
/// </summary>
static class LinearChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var id in Enum.GetValues<RecipeId>())
        {
            foreach (var check in Operands(id, device)) yield return check;
            yield return EndToEnd(id, device);
        }
    }

    static bool Same(Tensor a, Tensor b, out long mismatches)
    {
        var x = a.cpu().to(ScalarType.Float32); var y = b.cpu().to(ScalarType.Float32);
        var equal = x.eq(y).logical_or(x.isnan().logical_and(y.isnan()));
        mismatches = equal.logical_not().sum().item<long>();
        return mismatches == 0;
    }

    static IEnumerable<(string, bool, string)> Operands(RecipeId id, Device device)
    {
        Recipe recipe = id;
        const int T = 200, K = 256, N = 384;
        manual_seed(5);
        var cpuLayer = new QLinear(K, N, recipe, name: "check") { Seed = 77, LayerId = 3 };
        var gpuLayer = new QLinear(K, N, recipe, name: "check") { Seed = 77, LayerId = 3 };
        using (no_grad()) gpuLayer.weight.copy_(cpuLayer.weight);
        gpuLayer.to(device);
        var x = randn(T, K); var dy = randn(T, N);
        var (xqC, wqC) = cpuLayer.QuantizeForwardOperands(x, cpuLayer.weight.detach(), recipe);
        var (xqG, wqG) = gpuLayer.QuantizeForwardOperands(x.to(device), gpuLayer.weight.detach(), recipe);
        var (d3C, w4C) = cpuLayer.QuantizeDgradOperands(dy, wqC, recipe, step: 9);
        var (d3G, w4G) = gpuLayer.QuantizeDgradOperands(dy.to(device), wqG, recipe, step: 9);
        var (d5C, x6C) = cpuLayer.QuantizeWgradOperands(dy, xqC, recipe, step: 9);
        var (d5G, x6G) = gpuLayer.QuantizeWgradOperands(dy.to(device), xqG, recipe, step: 9);
        foreach (var (slot, c, g) in new[] { ("Q1", xqC, xqG), ("Q2", wqC, wqG), ("Q3", d3C, d3G), ("Q4", w4C, w4G), ("Q5", d5C, d5G), ("Q6", x6C, x6G) })
        {
            bool ok = Same(c, g, out long bad);
            yield return ($"QLinear {recipe.Name} {slot} CUDA == CPU", ok, ok ? $"{c.numel()} elements identical" : $"{bad} of {c.numel()} differ");
        }
    }

    static (string, bool, string) EndToEnd(RecipeId id, Device device)
    {
        Recipe recipe = id;
        manual_seed(6);
        var layer = new QLinear(512, 512, recipe, name: "e2e") { Seed = 1 };
        var cpuY = layer.call(randn(64, 512)).detach();
        layer.to(device, ScalarType.BFloat16);
        manual_seed(6);
        _ = new QLinear(512, 512, recipe);                        // same RNG draws as above
        var x = randn(64, 512).to(ScalarType.BFloat16, device).requires_grad_();
        var y = layer.call(x);
        y.backward([ones_like(y)]);
        bool finite = y.isfinite().all().item<bool>() && x.grad!.isfinite().all().item<bool>() && layer.weight.grad!.isfinite().all().item<bool>();
        double rel = ((y.to(ScalarType.Float32).cpu() - cpuY).norm() / cpuY.norm()).item<float>();
        // bf16 inputs move some elements across FP4 rounding boundaries, so the forward differs by a few percent.
        bool ok = finite && rel < 0.1;
        return ($"QLinear {recipe.Name} bf16 forward+backward on CUDA", ok, $"finite {finite}, relative difference to the FP32 CPU forward {rel:E2}");
    }
}
