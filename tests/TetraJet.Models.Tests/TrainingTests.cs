using TetraJet.Cli;
using TetraJet.Models.Training;

namespace TetraJet.Models.Tests;

public class TrainingTests
{
    static List<MetricsRow> Metrics(string dir) => MetricsCsv.Read(Path.Combine(dir, MetricsCsv.FileName));

    [Theory]
    [InlineData("bf16")]
    [InlineData("microscaling")]
    [InlineData("tetrajet")]
    [InlineData("nvidia-nvfp4")]
    [InlineData("tetrajet-v2")]
    public void A_few_vit_steps_lower_the_loss(string recipe)
    {
        var dir = CliHarness.TempDir($"vit-{recipe}");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(Path.Combine(dir, "run"), recipe, 24, "--lr", "3e-3", "--eval-every", "100"));
        Assert.True(code == 0, err);
        var rows = Metrics(Path.Combine(dir, "run"));
        Assert.Equal(24, rows.Count);
        Assert.True(rows.TakeLast(4).Average(r => r.Loss) < rows.Take(4).Average(r => r.Loss) - 0.1,
            $"loss {string.Join(", ", rows.Select(r => r.Loss.ToString("0.000")))}");
    }

    [Fact]
    public void A_few_gpt_steps_lower_the_loss()
    {
        var dir = Path.Combine(CliHarness.TempDir("gpt"), "run");
        var (code, stdout, err) = CliHarness.Run("train", "gpt", "--recipe", "tetrajet-v2", "--steps", "12", "--batch", "8", "--eval-every", "100",
            "--eval-subset", "4096", "--out", dir, "--quiet");
        Assert.True(code == 0, err);
        var rows = Metrics(dir);
        Assert.True(rows.TakeLast(3).Average(r => r.Loss) < rows.Take(3).Average(r => r.Loss) - 0.3);
        Assert.NotNull(rows[^1].EvalPpl);
        Assert.Contains("sample:", stdout);
    }

    [Fact]
    public void Resume_continues_bit_exactly()
    {
        var root = CliHarness.TempDir("resume");
        string straight = Path.Combine(root, "straight"), split = Path.Combine(root, "split");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(straight, "tetrajet", 8, "--eval-every", "4")).Code);
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(split, "tetrajet", 8, "--eval-every", "4", "--stop-after", "4")).Code);
        Assert.Equal(4, Checkpoint.Read(Path.Combine(split, Checkpoint.FileName)).Header.Step);
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(split, "tetrajet", 8, "--eval-every", "4", "--resume"));
        Assert.True(code == 0, err);

        var a = Metrics(straight);
        var b = Metrics(split);
        Assert.Equal(a.Select(r => (r.Step, r.Loss, r.Lr, r.TrainAcc, r.EvalLoss, r.EvalAcc)), b.Select(r => (r.Step, r.Loss, r.Lr, r.TrainAcc, r.EvalLoss, r.EvalAcc)));
        var ca = Checkpoint.Read(Path.Combine(straight, Checkpoint.FileName));
        var cb = Checkpoint.Read(Path.Combine(split, Checkpoint.FileName));
        Assert.Equal(8, cb.Header.Step);
        Assert.True(ca.ModelState.AsSpan().SequenceEqual(cb.ModelState), "weights differ");
        Assert.True(ca.OptimizerState.AsSpan().SequenceEqual(cb.OptimizerState), "optimizer state differs");
    }

    [Fact]
    public void Run_writes_summary_plot_and_tensorboard_events()
    {
        var dir = Path.Combine(CliHarness.TempDir("outputs"), "run");
        var (code, stdout, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--eval-every", "2"));
        Assert.True(code == 0, err);
        Assert.Contains("test accuracy", stdout);

        var png = File.ReadAllBytes(Path.Combine(dir, "curves.png"));
        var (w, h) = OutputFormats.PngSize(png);
        Assert.True(w >= 600 && h >= 300);

        var events = Directory.GetFiles(dir, "events.out.tfevents.*");
        Assert.Single(events);
        var scalars = OutputFormats.ReadScalars(File.ReadAllBytes(events[0]));
        foreach (var tag in new[] { "train/loss", "train/lr", "train/img_per_s", "eval/loss", "eval/accuracy" })
            Assert.Contains(tag, scalars.Select(s => s.Tag));
        Assert.Equal([1L, 2L, 3L, 4L], scalars.Where(s => s.Tag == "train/loss").Select(s => s.Step));
        var losses = Metrics(dir).Select(r => (float)r.Loss);
        Assert.Equal(losses, scalars.Where(s => s.Tag == "train/loss").Select(s => s.Value));

        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        Assert.InRange(summary.RootElement.GetProperty("EvalAccuracy").GetDouble(), 0, 1);
        Assert.Contains("| Q1 | X | K |", summary.RootElement.GetProperty("RecipeDescription").GetString());
        Assert.Equal("fp32", summary.RootElement.GetProperty("Precision").GetString());   // the CPU's default
        // Steps 3 and 4 timed alone: the same order of magnitude as the whole run's rate, whose first step compiles.
        double steady = summary.RootElement.GetProperty("SteadyThroughput").GetDouble(), whole = summary.RootElement.GetProperty("Throughput").GetDouble();
        Assert.InRange(steady / whole, 0.1, 10);

        var comparePng = Path.Combine(Path.GetDirectoryName(dir)!, "cmp.png");
        var cmp = CliHarness.Run("compare", dir, dir, "--out", comparePng);
        Assert.Equal(0, cmp.Code);
        Assert.Contains("| run |", cmp.Out);
        Assert.True(OutputFormats.PngSize(File.ReadAllBytes(comparePng)).Width >= 600);
    }

    [Fact]
    public void Bf16_precision_trains_the_linear_layers_under_autocast()
    {
        var dir = Path.Combine(CliHarness.TempDir("bf16"), "run");
        var (code, stdout, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 3, "--precision", "bf16"));
        Assert.True(code == 0, err);
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        Assert.Equal("bf16", summary.RootElement.GetProperty("Precision").GetString());
        var losses = Metrics(dir).Select(r => r.Loss).ToList();
        Assert.Equal(3, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0 && l < 10, $"loss {l}"));
        // Not the float32 run: the quantizers saw bfloat16 inputs.
        var fp32 = Path.Combine(Path.GetDirectoryName(dir)!, "fp32");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(fp32, "tetrajet", 3)).Code);
        Assert.NotEqual(Metrics(fp32).Select(r => r.Loss), losses);
    }
}
