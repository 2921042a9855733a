using TetraJet.Oscillation;
using static TorchSharp.torch;

namespace TetraJet.Optim;

/// <summary>
/// Q-Ramping's calibration (ALGORITHMS.md §5), as the TetraJet authors' code runs it: snapshot model and optimizer, run
/// 31 ordinary training steps (plain AdamW: every period 1, nothing accumulated), accumulate D_FP and D_Q of every
/// quantized weight over the 30 differences between consecutive steps' weights, restore the snapshot, and set
/// period = floor((D_Q/k1) / (D_FP + 1e-8))·k2 + 1 (at most the steps per epoch) for those weights.
/// </summary>
/// <remarks>
/// step_acc and grad_acc carry over recalibration: restoring the snapshot gives every element back the gradient sum and
/// step count it had accumulated since its last update before calibration (the calibration steps leave no trace in
/// them), and only its period changes. An element whose count already exceeds its new period updates at the next
/// multiple of that period (step_acc mod period = 0), as AdamW-Ramping does at any step.
/// </remarks>
public static class QRampingCalibration
{
    /// <summary>Training steps of one calibration: 31 steps give 30 differences.</summary>
    public const int DefaultSteps = 31;
    public const int K1 = 16, K2 = 5;

    /// <param name="trainStep">One ordinary training step: forward, backward, <c>optimizer.step()</c>.</param>
    /// <returns>The mean period per layer path, for reporting.</returns>
    public static IReadOnlyDictionary<string, double> Calibrate(nn.Module model, AdamWRamping optimizer, Action trainStep,
        long stepsPerEpoch, int steps = DefaultSteps, int k1 = K1, int k2 = K2)
    {
        if (steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), steps, "calibration needs at least 2 steps (one difference)");
        // Holds the snapshot, the periods and every temporary until the calibration is over (a temporary left to the
        // finalizer can be freed while libtorch still reads it); what outlives it, the optimizer copies.
        using var scope = NewDisposeScope();
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
            optimizer.ClearRamping();
            // The first step's weights are the first observation: the differences run between consecutive steps.
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
            // Restore: everything the calibration steps touched goes back, bit for bit, step_acc and grad_acc included.
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
