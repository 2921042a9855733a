using TetraJet;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// QLinear on CUDA against QLinear on the CPU, through autograd: the six quantized operands of every recipe must be the
/// same bits (float32 and bfloat16, same seed/step/layer id) on every legal shape, and the outputs and gradients close.
/// TetraJet-v2 with OutControl must fix the same channels in the same order on both devices and then give the same
/// operands too (the outlier wgrad's MXFP8 ones included), keep both parts packed with the same gradients as unpacked,
/// and reset the same FP4-part elements under OsciReset.
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
        yield return OsciResetUnderOutControl(device);
        foreach (var (label, recipe) in SideStreamRecipes)
            yield return SideStream(recipe, label, device);
    }

    static readonly (string Label, Recipe Recipe)[] SideStreamRecipes =
    {
        ("TetraJet", RecipeId.TetraJet),
        ("TetraJet-v2", RecipeId.TetraJetV2),
        ("TetraJet, FP8 GEMMs", Recipe.Get(RecipeId.TetraJet) with { Gemm = GemmPath.FP8 }),
    };

    /// <summary>
    /// Q4 and Q6 on the side stream (<see cref="QLinear.OverlapBackward"/>) against the same layer with them in line:
    /// dX and dW must be the same bits over three steps, at a shape where the side kernels run beside Q3 + Q5 and the
    /// dgrad GEMM. A GEMM that read Q4's or Q6's output before the side stream wrote it would not be.
    /// </summary>
    static (string, bool, string) SideStream(Recipe recipe, string label, Device device)
    {
        const int T = 4096, K = 2048, N = 2048;
        string name = $"QLinear {label} [{T}, {K}] → {N} bf16: Q4/Q6 on the side stream == in line (dX, dW, 3 steps)";
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(8);
            var inline = new QLinear(K, N, recipe, name: "side") { Seed = 5, LayerId = 2, OverlapBackward = false };
            var aside = new QLinear(K, N, recipe, name: "side") { Seed = 5, LayerId = 2 };
            aside.load_state_dict(inline.state_dict());
            inline.to(device, ScalarType.BFloat16);
            aside.to(device, ScalarType.BFloat16);
            var details = new List<string>();
            bool ok = true;
            for (int step = 0; step < 3; step++)
            {
                var x = randn(new long[] { T, K }, ScalarType.BFloat16, device);
                var dy = randn(new long[] { T, N }, ScalarType.BFloat16, device);
                (Tensor Dx, Tensor Dw) Run(QLinear layer)
                {
                    layer.Step = step;
                    layer.zero_grad();
                    var xl = x.clone().requires_grad_();
                    layer.call(xl).backward([dy]);
                    return (xl.grad!.clone(), layer.weight.grad!.clone());
                }
                var a = Run(inline);
                var b = Run(aside);
                long bad = Mismatch(a.Dx, b.Dx) + Mismatch(a.Dw, b.Dw);
                ok &= bad == 0;
                if (bad != 0) details.Add($"step {step}: {bad} elements differ");
            }
            ok &= aside.LastForwardUsedFp8 == (recipe.Gemm == GemmPath.FP8);
            details.Add(ok ? $"identical; FP8 GEMMs {aside.LastForwardUsedFp8}" : $"FP8 GEMMs {aside.LastForwardUsedFp8}");
            return (name, ok, string.Join("; ", details));
        }
        catch (Exception e) { return (name, false, e.GetType().Name + ": " + e.Message); }
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

    internal static bool Same(Tensor a, Tensor b, out long mismatches)
    {
        var x = a.cpu().to(ScalarType.Float32); var y = b.cpu().to(ScalarType.Float32);
        // Bit equality: zeros must agree in sign too; any NaN matches any NaN.
        var equal = x.eq(y).logical_and(x.signbit().eq(y.signbit())).logical_or(x.isnan().logical_and(y.isnan()));
        mismatches = equal.logical_not().sum().item<long>();
        return mismatches == 0;
    }

    internal static long Mismatch(Tensor a, Tensor b) { Same(a, b, out long m); return m; }

    /// <summary>A forward and backward through autograd of the same layer on the CPU and on CUDA, operands caught by the probe.</summary>
    internal static (Tensor? Y, Tensor? Dx, Tensor? Dw, Tensor?[] Operands) Step(QLinear layer, Tensor x, Tensor dy, Device device)
    {
        var seen = new Tensor?[9];
        layer.OperandProbe = (slot, t) => seen[slot] = t.detach().cpu().clone().DetachFromDisposeScope();
        var xl = x.detach().to(device).clone().requires_grad_();   // a leaf of its own on either device
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
    /// TetraJet-v2 + OutControl with its schedule forced (start 1, window 1): the first training step fixes the channels.
    /// K = 256 gives k = 128 outlier channels. Every column of X has its own norm (the 128 injected outliers 40 … 167,
    /// the rest 1 … 2.3), so neither the choice nor the order of either part (which fixes the blocks) hinges on the last
    /// bits of the norm sums, which the two devices add in different orders.
    /// </summary>
    static IEnumerable<(string, bool, string)> OutControl(Device device)
    {
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 1, OutControlWindow = 1 };
        string name = $"QLinear {recipe.Name} + OutControl";
        const int T = 200, K = 256, N = 384, Steps = 3;
        manual_seed(7);
        var cpuLayer = new QLinear(K, N, recipe, name: "outcontrol") { Seed = 77, LayerId = 4 };
        var gpuLayer = new QLinear(K, N, recipe, name: "outcontrol") { Seed = 77, LayerId = 4 };
        gpuLayer.load_state_dict(cpuLayer.state_dict());
        gpuLayer.to(device);
        var outliers = Enumerable.Range(0, 128).Select(i => (long)(7 * i + 3) % K).ToArray();   // distinct: 7 is odd
        var scale = Enumerable.Range(0, K).Select(j => 1f + 0.005f * j).ToArray();
        for (int i = 0; i < outliers.Length; i++) scale[outliers[i]] = 40f + i;
        var x = randn(T, K);
        x = x / x.norm(dim: 0, keepdim: true) * tensor(scale);   // column j has norm scale[j]
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

        var chC = cpuLayer.OutControlChannels; var chG = gpuLayer.OutControlChannels;
        bool fixedBoth = chC is not null && chG is not null;
        bool sameChannels = fixedBoth && Same(chC!.Outliers.to(ScalarType.Float32), chG!.Outliers.to(ScalarType.Float32), out _)
            && Same(chC.Fp4.to(ScalarType.Float32), chG.Fp4.to(ScalarType.Float32), out _);
        // Largest first: the injected channels in the order of their scales, 167 down to 40.
        var expected = tensor(outliers.Reverse().ToArray()).to(ScalarType.Float32);
        bool injected = fixedBoth && Same(chC!.Outliers.to(ScalarType.Float32), expected, out _);
        yield return ($"{name} channels and their order CUDA == CPU", sameChannels && injected,
            !fixedBoth ? $"channels fixed on CPU {chC is not null}, on CUDA {chG is not null}"
                : $"{chC!.Outliers.numel()} outlier and {chC.Fp4.numel()} FP4 channels, both parts' order identical {sameChannels}, the 128 injected ones largest first {injected}");
        bool sameState = Same(cpuLayer.state_dict()["outcontrol_state"], gpuLayer.state_dict()["outcontrol_state"], out _);
        yield return ($"{name} schedule state CUDA == CPU", sameState, $"[collected, fixed, last step] = [{string.Join(", ", cpuLayer.state_dict()["outcontrol_state"].data<long>().ToArray())}]");
        if (!sameChannels) yield break;

        // The operands of the next step on the same weights: Q1/Q2 mixed (FP4 part in its gathered blocks, MXFP8 part),
        // Q3/Q4 over all K, Q5/Q6 over the FP4 part, and the outlier wgrad's MXFP8 operands along T (probe slots 7, 8).
        long at = cpuLayer.Step;
        cpuLayer.zero_grad(); gpuLayer.zero_grad();
        var c = Step(cpuLayer, x, dy, CPU);
        var g = Step(gpuLayer, x, dy, device);
        string[] labels = ["", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6 (FP4 part)", "MXFP8(dY) along T", "MXFP8(X̂_out) along T"];
        for (int slot = 1; slot <= 8; slot++)
        {
            long bad = c.Operands[slot] is { } co && g.Operands[slot] is { } go ? Mismatch(co, go) : -1;
            yield return ($"{name} {labels[slot]} CUDA == CPU", bad == 0, bad == 0 ? $"{c.Operands[slot]!.numel()} elements identical" : bad < 0 ? "not seen" : $"{bad} differ");
        }

        // The last training step's output and gradients through the autograd path with the channels fixed: the operands
        // are the same bits (checked above), so only the float32 GEMMs' summation order differs (~1e-6).
        double Rel(Tensor c, Tensor g) => ((g.cpu() - c).norm() / c.norm()).item<float>();
        double ry = Rel(yC!.detach(), yG!.detach()), rdx = Rel(dxC!, dxG!), rdw = Rel(dwC!, dwG!);
        bool close = Math.Max(ry, Math.Max(rdx, rdw)) < 1e-4;
        yield return ($"{name} forward+backward CUDA ≈ CPU", close, $"relative difference Y {ry:E2}, dX {rdx:E2}, dW {rdw:E2}");

        // Both parts in storage form on CUDA (NVFP4 FP4 part, MXFP8 outlier part): the CPU's bytes, and the same
        // gradients as keeping them unpacked, bf16 and float32.
        foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            Tensor[] Run(bool pack)
            {
                gpuLayer.PackSavedOperands = pack;
                gpuLayer.to(dtype);
                gpuLayer.Step = at;
                gpuLayer.zero_grad();
                var xg = x.to(dtype, device).requires_grad_();
                var y = gpuLayer.call(xg);
                y.backward([dy.to(dtype, device)]);
                return [y.detach(), xg.grad!, gpuLayer.weight.grad!.clone(), gpuLayer.bias!.grad!.clone()];
            }
            var plain = Run(false);
            long plainBytes = gpuLayer.LastSavedBytes;
            var packed = Run(true);
            long packedBytes = gpuLayer.LastSavedBytes;
            long bad = plain.Zip(packed).Sum(p => Same(p.First, p.Second, out long b) ? 0 : b);
            bool ok = bad == 0 && packedBytes < plainBytes;
            yield return ($"{name} packed X̂/Ŵ (NVFP4 + MXFP8 parts) == plain on CUDA ({dtype} y, dX, dW, db)", ok,
                $"{bad} elements differ; saved {packedBytes} bytes packed, {plainBytes} plain");
        }
        gpuLayer.PackSavedOperands = true;
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
        var noise = randn(15, 256, 512) * 2e-3f;                 // a random walk standing in for optimizer steps
        Tensor before = cpuLayer.weight.detach().clone();
        for (int step = 1; step <= 15; step++)                   // step 10 snapshots and chooses the elements, 11–14 measure, 15 resets
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

    /// <summary>
    /// Full OsciReset with OutControl's channels fixed: the window tracks and resets the FP4 part only, gathered and
    /// blocked as the forward pass quantizes it; CUDA must reset the same elements to the same bits as the CPU and leave
    /// the outlier columns alone.
    /// </summary>
    static (string, bool, string) OsciResetUnderOutControl(Device device)
    {
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with
        {
            OutControl = true, OutControlStart = 1, OutControlWindow = 1,
            OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 10, OsciResetWindow = 4, OsciResetThreshold = 2,
        };
        const int K = 512, N = 256;
        manual_seed(9);
        var cpuLayer = new QLinear(K, N, recipe, name: "oscoc");
        var gpuLayer = new QLinear(K, N, recipe, name: "oscoc");
        gpuLayer.load_state_dict(cpuLayer.state_dict());
        gpuLayer.to(device);
        // Distinct channel norms: the same channels and order on both devices (see the OutControl checks).
        var x = randn(64, K);
        x = x / x.norm(dim: 0, keepdim: true) * arange(K).to(ScalarType.Float32).mul(0.01f).add(1f);
        cpuLayer.train(); gpuLayer.train();
        cpuLayer.call(x); gpuLayer.call(x.to(device));
        var noise = randn(15, N, K) * 2e-3f;
        Tensor before = cpuLayer.weight.detach().clone();
        for (int step = 1; step <= 15; step++)                   // 1 fixes the channels; 10 snapshots, 11–14 measure, 15 resets
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
        var channels = cpuLayer.OutControlChannels!;
        bool sameWeights = Same(cpuLayer.weight.detach(), gpuLayer.weight.detach(), out long badWeights);
        var changed = cpuLayer.weight.detach().ne(before);
        long reset = changed.sum().item<long>();
        long inOutliers = changed.index_select(1, channels.Outliers).sum().item<long>();
        return ($"QLinear {recipe.Name} + OutControl + OsciReset CUDA == CPU", sameWeights && reset > 0 && inOutliers == 0,
            $"{reset} elements reset on the CPU ({inOutliers} in outlier columns), weights after the reset {(sameWeights ? "identical" : $"differ in {badWeights} elements")}");
    }
}
