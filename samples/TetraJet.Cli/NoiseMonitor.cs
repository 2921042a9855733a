using System.Globalization;
using TetraJet.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// The gradient-to-noise diagnostic of a run (docs/DIAGNOSTICS.md): every <c>--noise-every</c> steps the quantized
/// layers measure ‖g‖ / ‖n‖ on that step's backward; the ratios go to noise.csv (a column per layer), TensorBoard
/// (<c>noise/&lt;layer&gt;</c>, <c>noise/min</c>), metrics.csv (minimum and median) and the progress line, with a
/// warning once per layer that stays below √3 for <see cref="WarnAfter"/> samples in a row.
/// </summary>
sealed class NoiseMonitor
{
    public const string FileName = "noise.csv";
    /// <summary>Consecutive samples below the threshold before a layer is reported: one low sample is often just a step.</summary>
    public const int WarnAfter = 3;
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    readonly List<(string Path, QLinear Layer)> _layers;
    readonly int _every;
    readonly Dictionary<string, int> _below = [];
    readonly HashSet<string> _warned = [];
    bool _armed;

    /// <param name="every">Sample every this many steps; 0 is off.</param>
    public NoiseMonitor(nn.Module net, int every)
    {
        // Layers whose recipe quantizes (the NVIDIA recipe's BF16 tail and a BF16 run have none to measure).
        _layers = net.QuantizedLinears().Where(l => l.Layer.Recipe.IsQuantized).ToList();
        _every = every;
    }

    /// <summary>Whether the run samples at all (an interval and at least one quantized layer).</summary>
    public bool Active => _every > 0 && _layers.Count > 0;

    public string Header => "step," + string.Join(",", _layers.Select(l => l.Path));

    /// <summary>The minimum over layers at the last sample, for the progress line.</summary>
    public double? LastMin { get; private set; }

    /// <summary>
    /// On resume: the kept rows of noise.csv (through the checkpoint's step) give back the last minimum and each
    /// layer's run of low samples, so that warnings continue as in an uninterrupted run.
    /// </summary>
    public List<string>? KeepThrough(string path, long step)
    {
        // Cut back even when this invocation samples nothing (--noise-every 0): no row may outlive the checkpoint.
        if (_layers.Count == 0 || !File.Exists(path)) return null;
        var kept = RunCsv.KeepThrough(path, Header, "tetrajet train", step);
        foreach (var line in kept.Skip(1))
        {
            var ratios = line.Split(',').Skip(1).Select(v => double.Parse(v, NumberStyles.Float, Inv)).ToArray();
            Track(ratios, warn: null);
        }
        return kept;
    }

    /// <summary>Before the step that will be step <paramref name="done"/>: arms the layers when it is a sampled one.</summary>
    public void Arm(long done)
    {
        _armed = Active && done % _every == 0;
        if (!_armed) return;
        foreach (var (_, layer) in _layers)
        {
            layer.LastGradientNoise = null;
            layer.SampleGradientNoise = true;
        }
    }

    /// <summary>After the step: reports and disarms; the minimum and median over layers, or nulls on other steps.</summary>
    public (double? Min, double? Median) Collect(long done, string path, TfEventsWriter tb, Action<string> warn)
    {
        if (!_armed) return (null, null);
        _armed = false;
        var ratios = new double[_layers.Count];
        for (int i = 0; i < _layers.Count; i++)
        {
            var layer = _layers[i].Layer;
            layer.SampleGradientNoise = false;
            // No estimate: no gradient reached the layer on this step.
            ratios[i] = layer.LastGradientNoise?.Ratio ?? double.NaN;
            if (double.IsFinite(ratios[i])) tb.Scalar($"noise/{_layers[i].Path}", ratios[i], done);
        }
        var known = ratios.Where(r => !double.IsNaN(r)).Order().ToArray();
        double? min = known.Length > 0 ? known[0] : null;
        double? median = known.Length == 0 ? null : known.Length % 2 == 1 ? known[known.Length / 2] : (known[known.Length / 2 - 1] + known[known.Length / 2]) / 2;
        if (min is double m && double.IsFinite(m)) tb.Scalar("noise/min", m, done);
        bool fresh = !File.Exists(path);
        using (var w = new StreamWriter(path, append: true))
        {
            if (fresh) w.WriteLine(Header);
            w.WriteLine(done.ToString(Inv) + "," + string.Join(",", ratios.Select(r => r.ToString("G6", Inv))));
        }
        Track(ratios, s => warn($"warning: {s} at step {done}"));
        LastMin = min;
        return (min, median);
    }

    void Track(double[] ratios, Action<string>? warn)
    {
        for (int i = 0; i < ratios.Length && i < _layers.Count; i++)
        {
            var name = _layers[i].Path;
            if (double.IsNaN(ratios[i])) continue;
            _below[name] = ratios[i] < GradientNoiseEstimate.Threshold ? _below.GetValueOrDefault(name) + 1 : 0;
            if (_below[name] >= WarnAfter && _warned.Add(name))
                warn?.Invoke($"layer {name}: gradient-to-noise ratio below √3 for {WarnAfter} samples in a row (last {ratios[i].ToString("0.00", Inv)}); " +
                    "its SR noise outweighs its gradient, so it may stop improving (docs/DIAGNOSTICS.md)");
        }
        var known = ratios.Where(r => !double.IsNaN(r)).ToArray();
        if (known.Length > 0) LastMin = known.Min();
    }
}
