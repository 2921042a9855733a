using TetraJet;
using TetraJet.Oscillation;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The oscillation report on CUDA (one kernel pass per weight and step) against the tracker's tensor path on the CPU:
/// D_FP and D_Q bit for bit and the same rate of change, per recipe's forward weight quantizer, on a weight of
/// GPT-70m's 512 → 1536 shape (more elements than the kernel's threads, so its grid-stride loop runs).
/// </summary>
static class OscillationChecks
{
    const int Rows = 1536, Cols = 512, Steps = 6;

    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var (name, id) in new[] { ("TetraJet", RecipeId.TetraJet), ("TetraJet-v2", RecipeId.TetraJetV2), ("NVIDIA-NVFP4", RecipeId.NvidiaNvfp4) })
        {
            string check = $"oscillation {name}: CUDA kernel == CPU tensor path";
            (bool, string) result;
            try { result = Same(Recipe.Get(id), device); }
            catch (Exception e) { result = (false, $"{e.GetType().Name}: {e.Message}"); }
            yield return (check, result.Item1, result.Item2);
        }
    }

    static (bool, string) Same(Recipe recipe, Device device)
    {
        using var scope = NewDisposeScope();
        using var cpu = new OscillationTracker(recipe.Q2.Spec);
        using var gpu = new OscillationTracker(recipe.Q2.Spec);
        manual_seed(21);
        var w = randn(Rows, Cols) * 0.02f;
        for (int t = 0; t <= Steps; t++)
        {
            // Moves of up to ±4% and back: some quantized values flip, some stay.
            var wt = w * (1 + (t % 2 == 0 ? 1 : -1) * 0.04f * rand(Rows, Cols));
            cpu.Observe(wt);
            gpu.Observe(wt.to(device));
        }
        long dfpDiffer = LinearChecks.Mismatch(cpu.Dfp!, gpu.Dfp!), dqDiffer = LinearChecks.Mismatch(cpu.Dq!, gpu.Dq!);
        double rCpu = cpu.Metrics().RateOfChange, rGpu = gpu.Metrics().RateOfChange;
        bool pass = dfpDiffer == 0 && dqDiffer == 0 && rCpu == rGpu && rCpu > 0 && rCpu < 1 && gpu.Dfp!.device_type == DeviceType.CUDA;
        return (pass, $"{Steps} steps of [{Rows}, {Cols}]: D_FP elements differing {dfpDiffer}, D_Q {dqDiffer}; rate of change CPU {rCpu:R}, CUDA {rGpu:R}");
    }
}
