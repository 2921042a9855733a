using TetraJet.Oscillation;
using static TorchSharp.torch;

namespace TetraJet.Optim;

/// <summary>
/// Q-Ramping's calibration (ALGORITHMS.md §5): snapshot model and optimizer, run ordinary training steps while
/// measuring D_FP and D_Q of every quantized weight, restore the snapshot, and set
/// period = floor((D_Q/k1) / (D_FP + 1e-8))·k2 + 1 (at most the steps per epoch) for those weights.
/// </summary>
public static class QRampingCalibration
{
    public const int DefaultSteps = 30, K1 = 16, K2 = 5;

    /// <param name="trainStep">One ordinary training step: forward, backward, <c>optimizer.step()</c>.</param>
    /// <returns>The mean period per layer path, for reporting.</returns>
    public static IReadOnlyDictionary<string, double> Calibrate(nn.Module model, AdamWRamping optimizer, Action trainStep,
        long stepsPerEpoch, int steps = DefaultSteps, int k1 = K1, int k2 = K2)
    {
        var layers = model.QuantizedLinears().Where(l => l.Layer.Recipe.Q2.IsQuantized).ToList();
        var snapshot = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var counters = layers.Select(l => l.Layer.Step).ToArray();
        var opt = optimizer.Snapshot();
        var trackers = layers.Select(l => new OscillationTracker(l.Layer.Recipe.Q2.Spec)).ToList();
        // The measuring steps update nothing on purpose: the layers' training-protocol check waits them out.
        var all = model.QuantizedLinears().Select(l => l.Layer).ToList();
        foreach (var l in all) l.ProtocolCheckSuspended = true;
        try
        {
            for (int i = 0; i < layers.Count; i++) trackers[i].Observe(layers[i].Layer.weight);
            for (int s = 0; s < steps; s++)
            {
                trainStep();
                for (int i = 0; i < layers.Count; i++) trackers[i].Observe(layers[i].Layer.weight);
            }
            var periods = new List<Tensor>();
            foreach (var t in trackers)
            {
                var raw = (t.Dq! / k1 / (t.Dfp! + 1e-8)).floor() * k2 + 1;
                periods.Add(raw.clamp_max(Math.Max(1, stepsPerEpoch)).to(ScalarType.Int32));
            }
            // Restore: everything the 30 steps touched goes back, bit for bit.
            using (no_grad())
            {
                var current = model.state_dict();
                foreach (var (key, value) in snapshot) current[key].copy_(value);
            }
            optimizer.Restore(opt);
            var report = new Dictionary<string, double>();
            for (int i = 0; i < layers.Count; i++)
            {
                layers[i].Layer.Step = counters[i];
                layers[i].Layer.MarkCalibrated();
                optimizer.SetPeriod(layers[i].Layer.weight, periods[i]);
                report[layers[i].Path] = periods[i].to(ScalarType.Float64).mean().item<double>();
            }
            return report;
        }
        finally
        {
            foreach (var l in all) l.ProtocolCheckSuspended = false;
            foreach (var t in trackers) t.Dispose();
            foreach (var v in snapshot.Values) v.Dispose();
        }
    }
}
