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

    /// <summary>
    /// Makes the layer ids of the model's QLinears distinct: a layer whose id (taken modulo 2^28, as the streams use it)
    /// equals an earlier layer's gets <see cref="LayerStreams.Rehash"/> of it and its path. Ids normally differ already
    /// (they hash the initial weights); this settles a hash collision or layers created with identical weights, and
    /// is deterministic, so a run and its rerun agree. Returns the paths of the layers it changed.
    /// </summary>
    public static IReadOnlyList<string> MakeLayerIdsDistinct(this nn.Module model)
    {
        var seen = new HashSet<int>();
        var changed = new List<string>();
        const int mask = (1 << LayerStreams.IdBits) - 1;
        foreach (var (path, layer) in model.QuantizedLinears())
        {
            int id = layer.LayerId & mask;
            if (seen.Add(id)) continue;
            do id = LayerStreams.Rehash(id, path); while (!seen.Add(id));
            layer.LayerId = id;
            changed.Add(path);
        }
        return changed;
    }

    /// <summary>
    /// Whether every QLinear keeps X̂ and Ŵ packed for backward (the default) or dequantized: same numbers, about a
    /// quarter of the activation memory against two fewer passes per layer (docs/BENCHMARKS.md).
    /// </summary>
    public static void PackSavedOperands(this nn.Module model, bool pack = true)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.PackSavedOperands = pack;
    }

    /// <summary>
    /// Sets <see cref="QLinear.OverlapBackward"/> on every quantized layer: on CUDA, Q4 and Q6 on a side stream (the
    /// default) or in line on torch's stream. The same bits either way.
    /// </summary>
    public static void OverlapBackward(this nn.Module model, bool on = true)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.OverlapBackward = on;
    }

    /// <summary>Sets <see cref="QLinear.Autocast"/> on every quantized layer (null: compute in the input's dtype).</summary>
    public static void SetAutocast(this nn.Module model, ScalarType? dtype)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.Autocast = dtype;
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

    /// <summary>
    /// Writes the oscillation trackers' windows (the reporting of <see cref="TrackOscillation"/>, not part of the
    /// state dict), so that a resumed run reports the same windows as an uninterrupted one.
    /// </summary>
    public static void SaveOscillationTracking(this nn.Module model, BinaryWriter writer)
    {
        var layers = model.QuantizedLinears().ToList();
        writer.Write(layers.Count);
        foreach (var (_, layer) in layers) layer.SaveOscillationTracker(writer);
    }

    /// <summary>Restores what <see cref="SaveOscillationTracking"/> wrote, into a model with the same layers.</summary>
    public static void LoadOscillationTracking(this nn.Module model, BinaryReader reader)
    {
        var layers = model.QuantizedLinears().ToList();
        int count = reader.ReadInt32();
        if (count != layers.Count) throw new InvalidDataException($"the oscillation tracking holds {count} layers, this model has {layers.Count}");
        foreach (var (_, layer) in layers) layer.LoadOscillationTracker(reader);
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
