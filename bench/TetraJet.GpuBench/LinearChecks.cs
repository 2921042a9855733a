using TetraJet;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// QLinear on CUDA against QLinear on the CPU, through autograd: the six quantized operands of every recipe must be the
/// same bits (float32 and bfloat16, same seed/step/layer id) on every legal shape, and the outputs and gradients close.
/// TetraJet-v2 with OutControl must fix the same outlier channels on both devices and then give the same operands too.
/// </summary>
static class LinearChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var id in Enum.GetValues<RecipeId>())
        {
            foreach (var (t, k, n) in Shapes(id))
                foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                    yield return Operands(id, t, k, n, dtype, device);
            yield return EndToEnd(id, device);
        }
        foreach (var (label, recipe) in SlotOverrides)
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                yield return Operands(recipe, label, 199, 256, 384, dtype, device);
        foreach (var check in OutControl(device)) yield return check;
        yield return LeanOsciReset(device);
    }

    /// <summary>
    /// Legal shapes of a recipe as a user meets them: features that are multiples of the recipe's block but, where the
    /// block allows, not of 128 or 64 (DeiT-T's 192 → 576 and 768 → 192 among them), odd token counts, one
    /// 128-multiple shape, and random ones from a fixed seed.
    /// </summary>
    public static IEnumerable<(int T, int K, int N)> Shapes(RecipeId id)
    {
        int m = ((Recipe)id).FeatureMultiple;
        var rng = new Random(17 + (int)id);
        int Features() => m == 1 ? 37 * (2 * rng.Next(0, 8) + 1) : m * (2 * rng.Next(0, m >= 128 ? 4 : 8) + 1);
        if (m == 32) { yield return (197, 192, 576); yield return (65, 768, 192); }
        yield return (200, 256, 384);
        for (int i = 0; i < 3; i++) yield return (2 * rng.Next(0, 300) + 1, Features(), Features());
    }

    /// <summary>
    /// [QuantizeSlot] ablations that put formats where no named recipe has them: MXFP8 in dgrad without and in wgrad with
    /// the RHT, the NVIDIA Q4 re-quantized along N, NVFP4 per tensor re-quantizing a packed MXFP4 X̂, quantized slots
    /// over a BF16 forward, a nearest-rounding Q3.
    /// </summary>
    static readonly (string Label, Recipe Recipe)[] SlotOverrides =
    {
        ("TetraJet + Q3 MXFP4 RTN", Recipe.Get(RecipeId.TetraJet).WithSlot(Slot.Q3, Format.MXFP4, Rounding.Nearest)),
        ("TetraJet-v2 + Q3 MXFP8, Q4 NVFP4 without RHT", Recipe.Get(RecipeId.TetraJetV2).WithSlot(Slot.Q3, Format.MXFP8, hadamard: false).WithSlot(Slot.Q4, Format.NVFP4, hadamard: false)),
        ("TetraJet-v2 + Q5, Q6 MXFP8 with RHT", Recipe.Get(RecipeId.TetraJetV2).WithSlot(Slot.Q5, Format.MXFP8).WithSlot(Slot.Q6, Format.MXFP8)),
        ("NVIDIA-NVFP4 + Q4 NVFP4 per tensor SR", Recipe.Get(RecipeId.NvidiaNvfp4).WithSlot(Slot.Q4, Format.NVFP4PerTensor, Rounding.Stochastic)),
        ("TetraJet + Q6 NVFP4 per tensor", Recipe.Get(RecipeId.TetraJet).WithSlot(Slot.Q6, Format.NVFP4PerTensor)),
        ("BF16 + Q1 MXFP4, Q6 NVFP4", Recipe.Get(RecipeId.BF16).WithSlot(Slot.Q1, Format.MXFP4).WithSlot(Slot.Q6, Format.NVFP4)),
    };

    static bool Same(Tensor a, Tensor b, out long mismatches)
    {
        var x = a.cpu().to(ScalarType.Float32); var y = b.cpu().to(ScalarType.Float32);
        // Bit equality: zeros must agree in sign too; any NaN matches any NaN.
        var equal = x.eq(y).logical_and(x.signbit().eq(y.signbit())).logical_or(x.isnan().logical_and(y.isnan()));
        mismatches = equal.logical_not().sum().item<long>();
        return mismatches == 0;
    }

    static long Mismatch(Tensor a, Tensor b) { Same(a, b, out long m); return m; }

    /// <summary>A forward and backward through autograd of the same layer on the CPU and on CUDA, operands caught by the probe.</summary>
    static (Tensor? Y, Tensor? Dx, Tensor? Dw, Tensor?[] Operands) Step(QLinear layer, Tensor x, Tensor dy, Device device)
    {
        var seen = new Tensor?[7];
        layer.OperandProbe = (slot, t) => seen[slot] = t.detach().cpu().clone().DetachFromDisposeScope();
        var xl = x.to(device).requires_grad_();
        var y = layer.call(xl);
        y.backward([dy.to(device)]);
        layer.OperandProbe = null;
        return (y.detach().cpu(), xl.grad!.cpu(), layer.weight.grad!.cpu(), seen);
    }

    /// <summary>
    /// The whole QLinear forward and backward on CUDA against the CPU: the six operands the GEMMs consume are the same
    /// bits (packing of X̂/Ŵ, the fused dY kernel and the re-quantizers from storage included); Y, dX and dW differ
    /// only by the GEMMs' summation order.
    /// </summary>
    static (string, bool, string) Operands(RecipeId id, int T, int K, int N, ScalarType dtype, Device device) =>
        Operands(id, ((Recipe)id).Name, T, K, N, dtype, device);

    static (string, bool, string) Operands(Recipe recipe, string label, int T, int K, int N, ScalarType dtype, Device device)
    {
        string name = $"QLinear {label} [{T}, {K}] → {N} {dtype}: CUDA == CPU";
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(5);
            var cpuLayer = new QLinear(K, N, recipe, name: "check") { Seed = 77, LayerId = 3, Step = 9 };
            var gpuLayer = new QLinear(K, N, recipe, name: "check") { Seed = 77, LayerId = 3, Step = 9 };
            gpuLayer.load_state_dict(cpuLayer.state_dict());
            cpuLayer.to(dtype);
            gpuLayer.to(device, dtype);
            var x = randn(T, K).to(dtype);
            var dy = randn(T, N).to(dtype);
            var c = Step(cpuLayer, x, dy, CPU);
            var g = Step(gpuLayer, x, dy, device);
            var details = new List<string>();
            bool ok = true;
            for (int slot = 1; slot <= 6; slot++)
            {
                if (c.Operands[slot] is null || g.Operands[slot] is null) { ok = false; details.Add($"Q{slot} not seen"); continue; }
                bool same = Same(c.Operands[slot]!, g.Operands[slot]!, out long bad);
                ok &= same;
                if (!same) details.Add($"Q{slot}: {bad} of {c.Operands[slot]!.numel()} differ");
            }
            double Rel(Tensor a, Tensor b) => ((b.to(ScalarType.Float32) - a.to(ScalarType.Float32)).norm() / a.to(ScalarType.Float32).norm().clamp_min(1e-30)).item<float>();
            double ry = Rel(c.Y!, g.Y!), rdx = Rel(c.Dx!, g.Dx!), rdw = Rel(c.Dw!, g.Dw!);
            bool finite = g.Y!.isfinite().all().item<bool>() && g.Dx!.isfinite().all().item<bool>() && g.Dw!.isfinite().all().item<bool>();
            double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-4;
            ok &= finite && Math.Max(ry, Math.Max(rdx, rdw)) < tolerance;
            details.Add($"six operands {(details.Count == 0 ? "identical" : "DIFFER")}; relative difference Y {ry:E1}, dX {rdx:E1}, dW {rdw:E1}; finite {finite}");
            return (name, ok, string.Join("; ", details));
        }
        catch (Exception e) { return (name, false, e.GetType().Name + ": " + e.Message); }
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

    /// <summary>
    /// TetraJet-v2 + OutControl with its schedule forced (start 0, window 1): the first training step fixes the outlier
    /// channels. X has 32 channels (10% of K = 256, one MXFP8 block) scaled far above the rest, so the choice does not
    /// hinge on the last bits of the channel norms, which the two devices sum in different orders.
    /// </summary>
    static IEnumerable<(string, bool, string)> OutControl(Device device)
    {
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 0, OutControlWindow = 1 };
        string name = $"QLinear {recipe.Name} + OutControl";
        const int T = 200, K = 256, N = 384, Steps = 3;
        manual_seed(7);
        var cpuLayer = new QLinear(K, N, recipe, name: "outcontrol") { Seed = 77, LayerId = 4 };
        var gpuLayer = new QLinear(K, N, recipe, name: "outcontrol") { Seed = 77, LayerId = 4 };
        gpuLayer.load_state_dict(cpuLayer.state_dict());
        gpuLayer.to(device);
        var outliers = Enumerable.Range(0, 32).Select(i => (long)(7 * i + 3) % K).ToArray();   // distinct: 7 is odd
        var x = randn(T, K);
        for (int i = 0; i < outliers.Length; i++) x[.., outliers[i]] *= 40f + i;
        var dy = randn(T, N);

        Tensor? yC = null, yG = null, dxC = null, dxG = null, dwC = null, dwG = null;
        for (int step = 1; step <= Steps; step++)
        {
            cpuLayer.train(); gpuLayer.train();
            cpuLayer.zero_grad(); gpuLayer.zero_grad();
            var xC = x.clone().requires_grad_(); var xG = x.clone().to(device).requires_grad_();   // leaves of their own
            yC = cpuLayer.call(xC); yG = gpuLayer.call(xG);
            yC.backward([dy]); yG.backward([dy.to(device)]);
            (dxC, dxG, dwC, dwG) = (xC.grad!, xG.grad!, cpuLayer.weight.grad!, gpuLayer.weight.grad!);
            // One SGD step from the CPU gradient on both, so that the weights move but stay the same bits
            // (the devices' GEMMs round differently, so their own gradients would drift apart).
            using (no_grad())
            {
                cpuLayer.weight.add_(dwC, alpha: -1e-3);
                gpuLayer.weight.copy_(cpuLayer.weight);
            }
            cpuLayer.UpdateQuantizationState(step, 100);
            gpuLayer.UpdateQuantizationState(step, 100);
        }

        var maskC = cpuLayer.OutlierMask; var maskG = gpuLayer.OutlierMask;
        bool fixedBoth = maskC is not null && maskG is not null;
        bool sameMask = fixedBoth && Same(maskC!, maskG!, out _);
        var expected = zeros(K, dtype: ScalarType.Bool); expected.index_fill_(0, tensor(outliers), true);
        bool injected = fixedBoth && Same(maskC!, expected, out _);
        yield return ($"{name} outlier mask CUDA == CPU", sameMask && injected,
            !fixedBoth ? $"mask fixed on CPU {maskC is not null}, on CUDA {maskG is not null}"
                : $"{maskC!.sum().item<long>()} channels on the CPU, {maskG!.sum().item<long>()} on CUDA, identical {sameMask}, the 32 injected ones {injected}");
        bool sameState = Same(cpuLayer.state_dict()["outcontrol_state"], gpuLayer.state_dict()["outcontrol_state"], out _);
        yield return ($"{name} schedule state CUDA == CPU", sameState, $"[collected, fixed, last step] = [{string.Join(", ", cpuLayer.state_dict()["outcontrol_state"].data<long>().ToArray())}]");
        if (!sameMask) yield break;

        // The six operands of the next step, outlier channels in MXFP8 (Q1, Q2, Q6), on the same weights.
        cpuLayer.zero_grad(); gpuLayer.zero_grad();
        var c = Step(cpuLayer, x, dy, CPU);
        var g = Step(gpuLayer, x, dy, device);
        for (int slot = 1; slot <= 6; slot++)
        {
            long bad = c.Operands[slot] is { } co && g.Operands[slot] is { } go ? Mismatch(co, go) : -1;
            yield return ($"{name} Q{slot} CUDA == CPU", bad == 0, bad == 0 ? $"{c.Operands[slot]!.numel()} elements identical" : bad < 0 ? "not seen" : $"{bad} differ");
        }

        // The last training step's output and gradients through the autograd path with the mask set: the operands
        // are the same bits (checked above), so only the float32 GEMMs' summation order differs (~1e-6).
        double Rel(Tensor c, Tensor g) => ((g.cpu() - c).norm() / c.norm()).item<float>();
        double ry = Rel(yC!.detach(), yG!.detach()), rdx = Rel(dxC!, dxG!), rdw = Rel(dwC!, dwG!);
        bool close = Math.Max(ry, Math.Max(rdx, rdw)) < 1e-4;
        yield return ($"{name} forward+backward CUDA ≈ CPU", close, $"relative difference Y {ry:E2}, dX {rdx:E2}, dW {rdw:E2}");
    }

    /// <summary>
    /// Lean OsciReset through one period on the same weight trajectory: CUDA must track the same elements (chosen by
    /// distance to a rounding midpoint, ties to the lower index) and reset them to the same bits as the CPU.
    /// </summary>
    static (string, bool, string) LeanOsciReset(Device device)
    {
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with
        {
            OsciReset = true, OsciResetLean = true, OsciResetStart = 0, OsciResetPeriod = 10, OsciResetWindow = 4, OsciResetThreshold = 2,
        };
        manual_seed(8);
        var cpuLayer = new QLinear(512, 256, recipe, name: "lean");
        var gpuLayer = new QLinear(512, 256, recipe, name: "lean");
        gpuLayer.load_state_dict(cpuLayer.state_dict());
        gpuLayer.to(device);
        var noise = randn(9, 256, 512) * 2e-3f;                  // a random walk standing in for optimizer steps
        Tensor before = cpuLayer.weight.detach().clone();
        for (int step = 1; step <= 9; step++)                    // step 5 chooses the elements, 6–9 measure, 9 resets
        {
            using (no_grad())
            {
                cpuLayer.weight.add_(noise[step - 1]);
                gpuLayer.weight.copy_(cpuLayer.weight);
                before = cpuLayer.weight.detach().clone();
            }
            cpuLayer.UpdateQuantizationState(step, 100);
            gpuLayer.UpdateQuantizationState(step, 100);
        }
        bool sameIndex = Same(cpuLayer.OsciResetIndex!.to(ScalarType.Int64), gpuLayer.OsciResetIndex!.to(ScalarType.Int64), out long badIndex);
        bool sameWeights = Same(cpuLayer.weight.detach(), gpuLayer.weight.detach(), out long badWeights);
        long reset = cpuLayer.weight.detach().ne(before).sum().item<long>();
        return ($"QLinear {recipe.Name} + lean OsciReset CUDA == CPU", sameIndex && sameWeights && reset > 0,
            $"{cpuLayer.OsciResetIndex!.numel()} tracked elements {(sameIndex ? "identical" : $"({badIndex} differ)")}, " +
            $"{reset} reset on the CPU, weights after the reset {(sameWeights ? "identical" : $"differ in {badWeights} elements")}");
    }
}
