using TetraJet;
using TetraJet.Models;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// A few training steps of every model size and recipe the trainer builds, on CUDA, so that a shape the trainer accepts
/// is never first tried by a user: the step-1 loss on CUDA equals the CPU's (same weights, same batch) within the
/// tolerance of the GEMMs' summation order, and every step's loss is finite. Combinations the trainer refuses (a
/// features size the recipe's block does not divide) must be refused on both devices with the same message.
/// </summary>
static class SmokeChecks
{
    static readonly string[] Recipes = ["bf16", "microscaling", "tetrajet", "nvidia-nvfp4", "tetrajet-v2"];

    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var size in VitConfig.Sizes)
            foreach (var recipe in Recipes)
                yield return One($"vit {size} {recipe}", () => new Vit(VitConfig.Get(size), Recipe.Parse(recipe)),
                    () => (randn(8, 1, 28, 28), randint(0, 10, new long[] { 8 })), device);
        foreach (var size in GptConfig.Sizes)
            foreach (var recipe in Recipes)
            {
                var config = GptConfig.Get(size);
                yield return One($"gpt {size} {recipe}", () => new Gpt(config, Recipe.Parse(recipe)),
                    () => { var t = randint(0, config.VocabSize, new long[] { 2, 65 }); return (t[.., ..64], t[.., 1..]); }, device);
            }
    }

    static Tensor Loss(Tensor logits, Tensor y) => nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), y.reshape(-1));

    static (string, bool, string) One(string name, Func<nn.Module<Tensor, Tensor>> build, Func<(Tensor X, Tensor Y)> batch, Device device)
    {
        string title = $"smoke {name}: 3 CUDA steps, step-1 loss CUDA == CPU";
        nn.Module<Tensor, Tensor> cpu, gpu;
        manual_seed(1);
        try { cpu = build(); }
        catch (ArgumentException e)
        {
            // The trainer refuses this combination before a step: the same refusal must hold on every device.
            return (title, e.Message.Contains("multiple", StringComparison.Ordinal), "refused at build, as the trainer refuses it: " + e.Message);
        }
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(1);
            gpu = build();
            gpu.load_state_dict(cpu.state_dict());
            gpu.to(device);
            manual_seed(2);
            var (x, y) = batch();
            cpu.train(); gpu.train();
            float lossCpu = Loss(cpu.call(x), y).item<float>();
            var opt = optim.AdamW(gpu.parameters(), lr: 1e-3);
            var losses = new List<float>();
            for (int step = 0; step < 3; step++)
            {
                opt.zero_grad();
                var loss = Loss(gpu.call(x.to(device)), y.to(device));
                loss.backward();
                opt.step();
                losses.Add(loss.item<float>());
            }
            bool finite = losses.All(float.IsFinite);
            double rel = Math.Abs(losses[0] - lossCpu) / Math.Max(1e-6, Math.Abs(lossCpu));
            bool ok = finite && rel < 1e-2;
            return (title, ok, $"loss CPU {lossCpu:F5}, CUDA {string.Join(" → ", losses.Select(l => l.ToString("F5")))} (step-1 relative difference {rel:E1})");
        }
        catch (Exception e) { return (title, false, e.GetType().Name + ": " + e.Message); }
        finally { cpu.Dispose(); }
    }
}
