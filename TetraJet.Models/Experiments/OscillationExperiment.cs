using System.Diagnostics;
using System.Text;
using TetraJet.Optim;
using static TorchSharp.torch;

namespace TetraJet.Models.Experiments;

/// <summary>One row of the oscillation experiment.</summary>
public sealed record OscillationResult(string Variant, double RateOfChange, double OscillatingFraction, double FinalLoss, double Seconds);

/// <summary>
/// A small model where FP4 weight oscillation appears: a two-layer student learns a teacher whose first-layer
/// weights sit on MXFP4 rounding midpoints, from inputs with a few large channels. Compares TetraJet with
/// +Q-EMA and +Q-Ramping, and TetraJet-v2 with +OsciReset (full and lean) and +OutControl (ALGORITHMS.md §5), reporting
/// r(W_Q), the fraction of oscillating elements (R ≥ 8) and the final held-out loss.
/// </summary>
public static class OscillationExperiment
{
    public const int Width = 256;

    public static IReadOnlyList<OscillationResult> Run(int steps = 400, int seed = 0, Action<string>? log = null)
    {
        Recipe tj = Recipe.TetraJet, v2 = Recipe.TetraJetV2;
        // The §5 schedules scaled to a short run: OsciReset from 64% (its default), every steps/10 with a window of a quarter
        // of that; OutControl collecting from step steps/8 for 10 steps (K = 256: 128 outlier channels, 128 FP4).
        int period = Math.Max(8, steps / 10);
        var variants = new (string Name, Recipe Recipe)[]
        {
            ("TetraJet", tj),
            ("TetraJet + Q-EMA", tj with { QEma = true, EmaDecay = 0.99 }),
            ("TetraJet + Q-Ramping", tj with { QRamping = true }),
            ("TetraJet-v2", v2),
            ("TetraJet-v2 + OsciReset", v2 with { OsciReset = true, OsciResetPeriod = period, OsciResetWindow = period / 4 }),
            ("TetraJet-v2 + OsciReset (lean)", v2 with { OsciReset = true, OsciResetLean = true, OsciResetPeriod = period, OsciResetWindow = period / 4 }),
            ("TetraJet-v2 + OutControl", v2 with { OutControl = true, OutControlStart = steps / 8, OutControlWindow = 10 }),
            ("BF16", Recipe.Get(RecipeId.BF16)),
        };
        var results = new List<OscillationResult>();
        foreach (var (name, recipe) in variants)
        {
            var sw = Stopwatch.StartNew();
            var (rate, osc, loss) = Train(recipe, steps, seed);
            results.Add(new OscillationResult(name, rate, osc, loss, sw.Elapsed.TotalSeconds));
            log?.Invoke($"{name,-31} r(W_Q) {rate:F5}  oscillating {osc:P2}  loss {loss:E3}  ({sw.Elapsed.TotalSeconds:F1} s)");
        }
        return results;
    }

    static Tensor Teacher(int seed)
    {
        // Grid midpoints times 2^-4, with one 4·2^-4 per 32-block: the MXFP4 scale is 2^-4, every other value a tie.
        float[] mids = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f];
        var rng = new Random(seed);
        var w = new float[Width * Width];
        for (int i = 0; i < w.Length; i++)
            w[i] = (i % 32 == 0 ? 4f : mids[rng.Next(mids.Length)] * (rng.Next(2) == 0 ? 1 : -1)) * 0.0625f;
        return tensor(w, Width, Width);
    }

    static Tensor Inputs(long n, Generator g)
    {
        var x = randn(n, Width, generator: g);
        x[.., TensorIndex.Slice(0, 4)] *= 12f;    // a few outlier channels, as LLM activations have
        return x;
    }

    static (double Rate, double Oscillating, double Loss) Train(Recipe recipe, int steps, int seed)
    {
        manual_seed(seed);
        var g = new Generator((ulong)seed + 1);
        var teacher1 = Teacher(seed);
        var teacher2 = randn(Width, Width, generator: g) * (0.5f / MathF.Sqrt(Width));
        Tensor Target(Tensor x) => nn.functional.gelu(x.matmul(teacher1.t())).matmul(teacher2.t());

        var l1 = new QLinear(Width, Width, recipe, bias: false, name: "l1");
        var l2 = new QLinear(Width, Width, recipe, bias: false, name: "l2");
        using (no_grad())
        {
            l1.weight.copy_(teacher1 + randn(Width, Width, generator: g) * 0.002f);
            l2.weight.copy_(teacher2 + randn(Width, Width, generator: g) * 0.002f);
        }
        var model = nn.Sequential(("l1", l1), ("act", nn.GELU()), ("l2", l2));
        var opt = new AdamWRamping(model.parameters(), lr: 5e-4, weightDecay: 0);
        var xs = Inputs(2048, g);
        var ys = Target(xs);
        var xTest = Inputs(1024, g);
        var yTest = Target(xTest);
        long batch = 128;
        int cursor = 0;
        void TrainStep()
        {
            var x = xs.narrow(0, cursor * batch % xs.shape[0], batch);
            var y = ys.narrow(0, cursor * batch % xs.shape[0], batch);
            cursor++;
            opt.zero_grad();
            nn.functional.mse_loss(model.call(x), y).backward();
            opt.step();
        }
        if (recipe.QRamping) QRampingCalibration.Calibrate(model, opt, TrainStep, stepsPerEpoch: xs.shape[0] / batch);
        model.TrackOscillation();
        for (int step = 1; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            TrainStep();
            model.UpdateQuantizationState(step, steps);
        }
        var summary = model.OscillationSummary();
        using (no_grad())
        {
            model.eval();
            double loss = nn.functional.mse_loss(model.call(xTest), yTest).item<float>();
            return (summary.RateOfChange, summary.OscillatingFraction, loss);
        }
    }

    /// <summary>The results as the markdown table of docs/RESULTS.md.</summary>
    public static string Markdown(IReadOnlyList<OscillationResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| variant | r(W_Q) | oscillating (R ≥ 8) | held-out MSE | seconds |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var r in results)
            sb.AppendLine($"| {r.Variant} | {r.RateOfChange:F5} | {r.OscillatingFraction:P2} | {r.FinalLoss:E3} | {r.Seconds:F1} |");
        return sb.ToString();
    }
}
