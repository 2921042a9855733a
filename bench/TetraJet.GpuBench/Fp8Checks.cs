using TetraJet;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The FP8 GEMM path (<see cref="GemmPath.FP8"/>) through QLinear on CUDA against QLinear on the CPU: the layer must take
/// it, its six operands must be the CPU's bits (rows whose block scales span more than 14 binades included: they go
/// through the exact patch), and Y, dX, dW must differ only by the accumulation. Then the accuracy of the FP8 GEMMs
/// against an FP32 GEMM of the same operands, beside the BF16 GEMMs', at a training-size shape.
/// </summary>
static class Fp8Checks
{
    static readonly (int T, int K, int N)[] Shapes = [(256, 256, 384), (208, 384, 1152), (4096 + 16, 128, 256)];

    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var id in new[] { RecipeId.TetraJet, RecipeId.Microscaling })
            foreach (var (t, k, n) in Shapes)
                foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
                    foreach (bool spanning in new[] { false, true })
                        yield return Operands(Recipe.Get(id) with { Gemm = GemmPath.FP8 }, t, k, n, dtype, spanning, device);
        yield return Operands(Recipe.Get(RecipeId.TetraJet) with { Gemm = GemmPath.FP8, QEma = true }, 256, 256, 384, ScalarType.BFloat16, false, device);
        yield return Accuracy(device);
        yield return Fp4Slot(device);
    }

    /// <summary>
    /// The Blackwell FP4 GEMM slot on this GPU: below compute capability 10.0 it must say so and stay off, and a layer
    /// then takes its other GEMMs; on 10.0 or newer its self-check must pass and the layer must take it.
    /// </summary>
    static (string, bool, string) Fp4Slot(Device device)
    {
        const string name = "Blackwell FP4 GEMM slot: selected by compute capability";
        try
        {
            using var scope = NewDisposeScope();
            int capability = TetraJet.Quantization.Gpu.CudaRunner.ComputeCapability(device.index < 0 ? 0 : device.index);
            string? verdict = TetraJet.Gemm.Fp4Gemm.Unavailable(device);
            var layer = new QLinear(256, 256, Recipe.TetraJet, name: "fp4");
            layer.to(device, ScalarType.BFloat16);
            var x = randn(new long[] { 64, 256 }, ScalarType.BFloat16, device).requires_grad_(true);
            layer.call(x).sum().backward();
            bool blackwell = capability >= TetraJet.Gemm.Fp4Gemm.MinComputeCapability;
            bool ok = blackwell ? verdict is null && layer.LastForwardUsedFp4 : verdict is not null && verdict.Contains("compute capability") && !layer.LastForwardUsedFp4;
            return (name, ok, $"compute capability {capability / 10}.{capability % 10}: {verdict ?? "available"}; the layer took it: {layer.LastForwardUsedFp4}");
        }
        catch (Exception e) { return (name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>x with, where <paramref name="spanning"/>, a few rows and columns whose first block is 2^-24 of the rest: the FP8 operand's fallback.</summary>
    static Tensor Input(int t, int k, bool spanning)
    {
        var x = randn(t, k);
        if (!spanning) return x;
        foreach (int r in new[] { 3, 7, t - 1 }) x[r, TensorIndex.Slice(0, 32)].mul_(MathF.ScaleB(1, -24));
        foreach (int c in new[] { 5, k - 2 }) x[TensorIndex.Slice(0, 32), c].mul_(MathF.ScaleB(1, -24));
        return x;
    }

    static (string, bool, string) Operands(Recipe recipe, int t, int k, int n, ScalarType dtype, bool spanning, Device device)
    {
        string name = $"FP8 GEMMs: QLinear {recipe.Name}{(recipe.QEma ? " + Q-EMA" : "")} [{t}, {k}] → {n} {dtype}{(spanning ? ", spanning rows" : "")}: operands CUDA == CPU";
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(15);
            var cpuLayer = new QLinear(k, n, recipe, name: "fp8") { Seed = 71, LayerId = 6, Step = 4 };
            var gpuLayer = new QLinear(k, n, recipe, name: "fp8") { Seed = 71, LayerId = 6, Step = 4 };
            gpuLayer.load_state_dict(cpuLayer.state_dict());
            if (recipe.QEma)
                for (int s = 1; s <= QLinear.EmaWarmupSteps; s++) { cpuLayer.UpdateQuantizationState(s, 100); gpuLayer.UpdateQuantizationState(s, 100); }
            cpuLayer.to(dtype);
            gpuLayer.to(device, dtype);
            var x = Input(t, k, spanning).to(dtype);
            var dy = Input(t, n, spanning).to(dtype);
            var c = LinearChecks.Step(cpuLayer, x, dy, CPU);
            var g = LinearChecks.Step(gpuLayer, x, dy, device);
            var details = new List<string>();
            bool ok = gpuLayer.LastForwardUsedFp8;
            if (!ok) details.Add("the CUDA layer did not take the FP8 GEMMs");
            bool same = true;
            for (int slot = 1; slot <= 6; slot++)
            {
                long bad = c.Operands[slot] is { } co && g.Operands[slot] is { } go ? LinearChecks.Mismatch(co, go) : -1;
                same &= bad == 0;
                if (bad != 0) details.Add(bad < 0 ? $"Q{slot} not seen" : $"Q{slot}: {bad} differ");
            }
            var counts = gpuLayer.Fp8Fallbacks();
            long exact = counts.Sum(p => p.Exact), total = counts.Sum(p => p.Total);
            if (spanning && exact == 0) { ok = false; details.Add("no line took the exact fallback"); }
            double Rel(Tensor a, Tensor b) => ((b.to(ScalarType.Float32) - a.to(ScalarType.Float32)).norm() / a.to(ScalarType.Float32).norm().clamp_min(1e-30)).item<float>();
            double ry = Rel(c.Y!, g.Y!), rdx = Rel(c.Dx!, g.Dx!), rdw = Rel(c.Dw!, g.Dw!);
            double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-3;
            ok &= Math.Max(ry, Math.Max(rdx, rdw)) < tolerance;
            ok &= same;
            details.Add($"six operands {(same ? "identical" : "DIFFER")}; {exact} of {total} lines exact; relative difference to the CPU Y {ry:E1}, dX {rdx:E1}, dW {rdw:E1}");
            return (name, ok, string.Join("; ", details));
        }
        catch (Exception e) { return (name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>
    /// T 4096, K = N 4096, bfloat16: the same layer with FP8 and with BF16 GEMMs (same operands, checked), each output
    /// and gradient against an FP32 GEMM of those operands.
    /// </summary>
    static (string, bool, string) Accuracy(Device device)
    {
        const int T = 4096, K = 4096, N = 4096;
        string name = $"FP8 GEMM accuracy: TetraJet [{T}, {K}] → {N} bf16, FP8 and BF16 GEMMs against FP32 on the same operands";
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(16);
            var fp8 = new QLinear(K, N, Recipe.Get(RecipeId.TetraJet) with { Gemm = GemmPath.FP8 }, name: "acc") { Seed = 5, LayerId = 1, Step = 1 };
            var bf16 = new QLinear(K, N, Recipe.TetraJet, name: "acc") { Seed = 5, LayerId = 1, Step = 1 };
            bf16.load_state_dict(fp8.state_dict());
            fp8.to(device, ScalarType.BFloat16);
            bf16.to(device, ScalarType.BFloat16);
            var x = randn(T, K).to(ScalarType.BFloat16);
            var dy = randn(T, N).to(ScalarType.BFloat16);
            var a = LinearChecks.Step(fp8, x, dy, device);
            var b = LinearChecks.Step(bf16, x, dy, device);
            bool took = fp8.LastForwardUsedFp8 && !bf16.LastForwardUsedFp8;
            long bad = Enumerable.Range(1, 6).Sum(s => LinearChecks.Mismatch(a.Operands[s]!, b.Operands[s]!));
            Tensor F(Tensor t) => t.to(ScalarType.Float32);
            var o = a.Operands;
            var y = F(o[1]!).matmul(F(o[2]!).t()).add(F(fp8.bias!.detach().cpu()));
            var dx = F(o[3]!).matmul(F(o[4]!));
            var dw = F(o[5]!).t().matmul(F(o[6]!));
            double Rel(Tensor got, Tensor want) => ((F(got) - want).norm() / want.norm()).item<float>();
            var ry = (Rel(a.Y!, y), Rel(b.Y!, y));
            var rdx = (Rel(a.Dx!, dx), Rel(b.Dx!, dx));
            var rdw = (Rel(a.Dw!, dw), Rel(b.Dw!, dw));
            bool ok = took && bad == 0 && new[] { ry.Item1, rdx.Item1, rdw.Item1 }.All(r => r < 1e-2);
            return (name, ok, $"took FP8 {took}, operands differing {bad}; relative error to FP32, FP8 / BF16 GEMM: " +
                $"Y {ry.Item1:E2} / {ry.Item2:E2}, dX {rdx.Item1:E2} / {rdx.Item2:E2}, dW {rdw.Item1:E2} / {rdw.Item2:E2}");
        }
        catch (Exception e) { return (name, false, e.GetType().Name + ": " + e.Message); }
    }
}
