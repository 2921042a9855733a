using static TorchSharp.torch;

namespace TetraJet;

/// <summary>Model-wide operations over every <see cref="QLinear"/> of a module tree.</summary>
public static class QuantizationExtensions
{
    /// <summary>All quantized linears with their module paths, in registration order.</summary>
    public static IEnumerable<(string Path, QLinear Layer)> QuantizedLinears(this nn.Module model)
    {
        foreach (var (name, module) in model.named_modules())
            if (module is QLinear q) yield return (name, q);
    }

    /// <summary>Gives every QLinear a layer id from its module path and the run seed, so streams differ per layer.</summary>
    public static void AssignLayerIds(this nn.Module model, ulong seed)
    {
        foreach (var (path, layer) in model.QuantizedLinears())
        {
            layer.LayerId = LayerStreams.IdOf(path);
            layer.Seed = seed;
        }
    }

    /// <summary>Sets the step counter of every QLinear (on resume, to continue the same random streams).</summary>
    public static void SetQuantizationStep(this nn.Module model, long step)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.Step = step;
    }

    /// <summary>
    /// Whether every QLinear keeps X̂ and Ŵ packed for backward (the default) or dequantized: same numbers, about a
    /// quarter of the activation memory against two fewer passes per layer (docs/BENCHMARKS.md).
    /// </summary>
    public static void PackSavedOperands(this nn.Module model, bool pack = true)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.PackSavedOperands = pack;
    }

    /// <summary>Bytes the quantized layers kept for backward in their last training forward (their activation memory).</summary>
    public static long SavedBytes(this nn.Module model) => model.QuantizedLinears().Sum(l => l.Layer.LastSavedBytes);

    /// <summary>
    /// After every optimizer step (<paramref name="step"/> counts from 1): Q-EMA, OsciReset, OutControl and the
    /// oscillation trackers of every QLinear.
    /// </summary>
    public static void UpdateQuantizationState(this nn.Module model, long step, long totalSteps)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.UpdateQuantizationState(step, totalSteps);
    }

    /// <summary>Starts or stops oscillation tracking on every QLinear whose weight is quantized.</summary>
    public static void TrackOscillation(this nn.Module model, bool on = true)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.TrackOscillation(on && layer.Recipe.Q2.IsQuantized);
    }

    /// <summary>Oscillation metrics per layer (and optionally starts a new window).</summary>
    public static IReadOnlyList<(string Path, Oscillation.OscillationMetrics Metrics)> OscillationMetrics(this nn.Module model, bool reset = false) =>
        model.QuantizedLinears().Where(l => l.Layer.Recipe.Q2.IsQuantized).Select(l => (l.Path, l.Layer.OscillationMetrics(reset))).ToList();

    /// <summary>Element-weighted mean of the per-layer metrics: the model's D_FP, D_Q, oscillating fraction and r(W_Q).</summary>
    public static Oscillation.OscillationMetrics OscillationSummary(this nn.Module model, bool reset = false)
    {
        double n = 0, dfp = 0, dq = 0, osc = 0, rate = 0; long steps = 0;
        foreach (var (_, layer) in model.QuantizedLinears())
        {
            if (!layer.Recipe.Q2.IsQuantized) continue;
            var m = layer.OscillationMetrics(reset);
            double size = (double)layer.InFeatures * layer.OutFeatures;
            n += size; dfp += m.MeanDfp * size; dq += m.MeanDq * size; osc += m.OscillatingFraction * size; rate += m.RateOfChange * size;
            steps = Math.Max(steps, m.Steps);
        }
        return n == 0 ? default : new(steps, dfp / n, dq / n, osc / n, rate / n);
    }
}
