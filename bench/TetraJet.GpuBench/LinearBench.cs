using TetraJet;
using TetraJet.Models;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// QLinear forward+backward against <c>nn.Linear</c> in bfloat16, measured in one run on the shapes users train: the
/// 8192×4096×4096 and 16384×1024×4096 reference shapes and every distinct linear of GPT-70m and ViT-small at their
/// default batch. Each row gives the time and its ratio to <c>nn.Linear</c> on the same shape.
/// </summary>
static class LinearBench
{
    public sealed record Variant(string Name, Func<int, int, nn.Module<Tensor, Tensor>> Build);

    /// <summary>(label, T, K, N): the reference shapes, then the models' linears (distinct (K, N) per model).</summary>
    public static IEnumerable<(string Label, int T, int K, int N)> Shapes()
    {
        yield return ("reference", 8192, 4096, 4096);
        yield return ("reference", 16384, 1024, 4096);
        var gpt = GptConfig.Get("70m");
        using (var model = new Gpt(gpt, Recipe.BF16))
            foreach (var (k, n) in DistinctLinears(model))
                yield return ("GPT-70m", 32 * gpt.Context, k, n);
        var vit = VitConfig.Get("small");
        using (var model = new Vit(vit, Recipe.BF16))
            foreach (var (k, n) in DistinctLinears(model))
                yield return ("ViT-small", 128 * (vit.Patches + 1), k, n);
    }

    static List<(int K, int N)> DistinctLinears(nn.Module model) =>
        model.QuantizedLinears().Select(l => (l.Layer.InFeatures, l.Layer.OutFeatures)).Distinct().ToList();

    public static List<object> Run(Device device, IReadOnlyList<Variant> variants, Func<Action, int, double> timeMs, Action<string> log)
    {
        var rows = new List<object>();
        foreach (var (label, t, k, n) in Shapes())
        {
            double? baseline = null;
            foreach (var v in variants)
            {
                using var scope = NewDisposeScope();
                try
                {
                    var layer = v.Build(k, n);
                    layer.to(device);
                    layer.to(ScalarType.BFloat16);
                    var x = randn(new long[] { t, k }, ScalarType.BFloat16, device).requires_grad_(true);
                    var dy = randn(new long[] { t, n }, ScalarType.BFloat16, device);
                    int iterations = (long)t * k * n > 1L << 36 ? 20 : 50;
                    double ms = timeMs(() => { var y = layer.call(x); y.backward([dy]); }, iterations);
                    baseline ??= ms;
                    double ratio = ms / baseline.Value;
                    log($"linear {label,-9} T {t,6} K {k,5} N {n,5}  {v.Name,-44} {ms,8:F3} ms  {ratio,5:F2}x nn.Linear");
                    rows.Add(new { model = label, T = t, K = k, N = n, variant = v.Name, ms, ratio_to_nn_linear = ratio });
                    layer.Dispose();
                }
                catch (Exception e)
                {
                    log($"linear {label} T {t} K {k} N {n} {v.Name}: FAIL {e.GetType().Name}: {e.Message}");
                    rows.Add(new { model = label, T = t, K = k, N = n, variant = v.Name, error = e.Message });
                }
            }
        }
        return rows;
    }
}
