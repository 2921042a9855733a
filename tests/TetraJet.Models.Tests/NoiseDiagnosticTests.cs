using System.Globalization;
using TetraJet.Cli;
using TetraJet.Diagnostics;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary>
/// The gradient-to-noise diagnostic of <c>tetrajet train</c> (docs/DIAGNOSTICS.md): noise.csv, the metrics.csv
/// columns and the TensorBoard tags of a tiny CPU run, BF16 without any, resumes, and the warning rule.
/// </summary>
public class NoiseDiagnosticTests
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    static (string[] Layers, List<(long Step, double[] Ratios)> Rows) NoiseCsv(string dir)
    {
        var lines = File.ReadAllLines(Path.Combine(dir, NoiseMonitor.FileName));
        var header = lines[0].Split(',');
        Assert.Equal("step", header[0]);
        return (header[1..], lines.Skip(1).Select(l => l.Split(',')).Select(f => (long.Parse(f[0], Inv), f[1..].Select(v => double.Parse(v, Inv)).ToArray())).ToList());
    }

    [Fact]
    public void A_tiny_run_writes_the_ratios_per_layer_to_csv_metrics_and_tensorboard()
    {
        var dir = Path.Combine(CliHarness.TempDir("noise"), "run");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 6, "--noise-every", "2"));
        Assert.True(code == 0, err);

        var (layers, rows) = NoiseCsv(dir);
        Assert.Equal(16, layers.Length);   // tiny-cpu ViT: 4 blocks × (Qkv, Proj, Fc1, Fc2)
        Assert.Contains("blocks.0.Qkv", layers);
        Assert.Equal([2L, 4L, 6L], rows.Select(r => r.Step));
        // A freshly initialised ViT on a batch of 32: gradients well above their SR noise, but not noise-free.
        Assert.All(rows.SelectMany(r => r.Ratios), v => Assert.InRange(v, 1.0, 1000.0));

        var metrics = MetricsCsv.Read(Path.Combine(dir, MetricsCsv.FileName));
        foreach (var m in metrics)
        {
            var row = rows.FirstOrDefault(r => r.Step == m.Step);
            if (row.Ratios is null) { Assert.Null(m.NoiseMin); Assert.Null(m.NoiseMedian); continue; }
            var sorted = row.Ratios.Order().ToArray();
            Assert.Equal(sorted[0], m.NoiseMin!.Value, 5e-6 * sorted[0]);   // noise.csv keeps 6 significant digits
            Assert.Equal((sorted[7] + sorted[8]) / 2, m.NoiseMedian!.Value, 5e-6 * sorted[8]);
        }

        var events = Directory.GetFiles(dir, TfEventsWriter.Prefix + "*").Single();
        var scalars = OutputFormats.ReadScalars(File.ReadAllBytes(events));
        foreach (var (layer, i) in layers.Select((l, i) => (l, i)))
        {
            var tagged = scalars.Where(s => s.Tag == "noise/" + layer).ToList();
            Assert.Equal([2L, 4L, 6L], tagged.Select(s => s.Step));
            Assert.Equal(rows.Select(r => (float)r.Ratios[i]), tagged.Select(s => s.Value), (a, b) => Math.Abs(a - b) <= 1e-5f * Math.Abs(a));
        }
        Assert.Equal(3, scalars.Count(s => s.Tag == "noise/min"));
    }

    [Fact]
    public void Bf16_has_no_noise_to_measure()
    {
        var dir = Path.Combine(CliHarness.TempDir("noise-bf16"), "run");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(dir, "bf16", 4, "--noise-every", "1"));
        Assert.True(code == 0, err);
        Assert.False(File.Exists(Path.Combine(dir, NoiseMonitor.FileName)));
        Assert.All(MetricsCsv.Read(Path.Combine(dir, MetricsCsv.FileName)), m => Assert.Null(m.NoiseMin));
        var scalars = OutputFormats.ReadScalars(File.ReadAllBytes(Directory.GetFiles(dir, TfEventsWriter.Prefix + "*").Single()));
        Assert.DoesNotContain(scalars, s => s.Tag.StartsWith("noise/", StringComparison.Ordinal));
    }

    [Fact]
    public void Sampling_does_not_change_the_run_and_a_resumed_run_measures_the_same()
    {
        var root = CliHarness.TempDir("noise-resume");
        string Dir(string n) => Path.Combine(root, n);
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(Dir("off"), "tetrajet", 6, "--noise-every", "0")).Code);
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(Dir("whole"), "tetrajet", 6, "--noise-every", "2")).Code);
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(Dir("split"), "tetrajet", 6, "--noise-every", "2", "--checkpoint-every", "3", "--stop-after", "3")).Code);
        var resumed = CliHarness.Run(CliHarness.QuickVit(Dir("split"), "tetrajet", 6, "--noise-every", "2", "--checkpoint-every", "3", "--resume"));
        Assert.True(resumed.Code == 0, resumed.Err);

        static List<double> Losses(string d) => MetricsCsv.Read(Path.Combine(d, MetricsCsv.FileName)).Select(m => m.Loss).ToList();
        Assert.False(File.Exists(Path.Combine(Dir("off"), NoiseMonitor.FileName)));
        Assert.Equal(Losses(Dir("off")), Losses(Dir("whole")));   // bit for bit: the second draw has its own streams
        Assert.Equal(Losses(Dir("whole")), Losses(Dir("split")));
        Assert.Equal(File.ReadAllText(Path.Combine(Dir("whole"), NoiseMonitor.FileName)), File.ReadAllText(Path.Combine(Dir("split"), NoiseMonitor.FileName)));
    }

    [Fact]
    public void A_layer_below_sqrt3_for_three_samples_in_a_row_is_reported_once_by_name()
    {
        var dir = CliHarness.TempDir("noise-warn");
        var a = new QLinear(32, 32, RecipeId.TetraJet, name: "A");
        var b = new QLinear(32, 32, RecipeId.TetraJet, name: "B");
        using var net = nn.Sequential(("a", a), ("b", b));
        var monitor = new NoiseMonitor(net, every: 1);
        var warnings = new List<string>();
        var path = Path.Combine(dir, NoiseMonitor.FileName);
        using var tb = TfEventsWriter.Create(dir);
        // a: ratio 1 throughout (below √3); b: 3, with one dip to 1 at step 3 (never three in a row).
        for (long step = 1; step <= 6; step++)
        {
            monitor.Arm(step);
            Assert.True(a.SampleGradientNoise);
            a.LastGradientNoise = new GradientNoiseEstimate(1, 1);
            b.LastGradientNoise = step == 3 ? new GradientNoiseEstimate(4, 4) : new GradientNoiseEstimate(9, 1);
            var (min, median) = monitor.Collect(step, path, tb, warnings.Add);
            Assert.False(a.SampleGradientNoise);
            Assert.Equal(1, min);
            Assert.Equal(step == 3 ? 1 : 2, median);
            if (step == 2) Assert.Empty(warnings);
        }
        var warning = Assert.Single(warnings);
        Assert.StartsWith("warning: layer a: gradient-to-noise ratio below √3 for 3 samples in a row", warning);
        Assert.EndsWith("at step 3", warning);
    }
}
