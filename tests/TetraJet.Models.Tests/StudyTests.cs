using System.Globalization;
using System.Text.Json;
using TetraJet.Cli;
using TetraJet.Cli.Study;

namespace TetraJet.Models.Tests;

/// <summary>
/// <c>tetrajet experiment study</c> end to end on a tiny CPU grid (2 cells × 2 seeds): the table's numbers against the
/// runs' own summary.json and oscillation.csv, resume that skips finished runs and continues an interrupted one, and
/// a report rebuilt from the raw CSV results alone.
/// </summary>
public class StudyTests
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    const string Grid = """
        {
          "name": "ci",
          "model": "vit",
          "seeds": [0, 1],
          "args": ["--steps", "4", "--batch", "32", "--train-subset", "256", "--eval-subset", "64", "--eval-every", "2", "--noise-every", "2", "--quiet"],
          "cells": [
            { "name": "BF16", "args": ["--recipe", "bf16"] },
            { "name": "only Q2", "args": ["--recipe", "tetrajet", "--slot", "Q1=bf16", "--slot", "Q3=bf16", "--slot", "Q4=bf16", "--slot", "Q5=bf16", "--slot", "Q6=bf16"] }
          ],
          "ranking": { "baseline": "BF16", "cells": ["only Q2"] }
        }
        """;

    static (double Mean, double Std) MeanStd(IReadOnlyList<double> v)
    {
        double mean = v.Sum() / v.Count;
        return (mean, Math.Sqrt(v.Select(x => (x - mean) * (x - mean)).Sum() / (v.Count - 1)));
    }

    static Dictionary<string, string[]> Table(string report) =>
        File.ReadAllLines(Path.Combine(report, "ci.csv")).Skip(1).Select(l => l.Split(',')).ToDictionary(f => f[0]);

    [Fact]
    public void A_tiny_grid_runs_resumes_and_reports_the_runs_own_numbers()
    {
        var root = CliHarness.TempDir("study");
        var gridFile = Path.Combine(root, "ci.json");
        File.WriteAllText(gridFile, Grid);
        string runs = Path.Combine(root, "runs"), report = Path.Combine(root, "report");
        string[] Study(string o, string r, params string[] extra) => ["experiment", "study", "--grid", gridFile, "--out", o, "--report", r, .. extra];

        var first = CliHarness.Run(Study(runs, report));
        Assert.True(first.Code == 0, first.Err);

        // The table against the run folders, computed here independently of the study's code.
        var table = Table(report);
        var slugs = new Dictionary<string, string> { ["BF16"] = "bf16", ["only Q2"] = "only-q2" };
        var means = new Dictionary<string, double>();
        foreach (var (cell, slug) in slugs)
        {
            var acc = new List<double>();
            var rates = new List<double>();
            foreach (var seed in new[] { 0, 1 })
            {
                var dir = Path.Combine(runs, slug, $"seed{seed}");
                using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
                acc.Add(100 * summary.RootElement.GetProperty("EvalAccuracy").GetDouble());
                var osc = Path.Combine(dir, "oscillation.csv");
                if (File.Exists(osc)) rates.Add(double.Parse(File.ReadAllLines(osc)[^1].Split(',')[2], Inv));
            }
            var (mean, std) = MeanStd(acc);
            means[cell] = mean;
            var row = table[cell];
            Assert.Equal("2", row[1]);
            Assert.Equal("accuracy", row[3]);
            Assert.Equal(mean, double.Parse(row[4], Inv), 1e-9);
            if (acc[0] == acc[1]) Assert.Equal(0, double.Parse(row[5], Inv));
            else Assert.Equal(std, double.Parse(row[5], Inv), 1e-9);
            if (cell == "BF16") { Assert.Empty(rates); Assert.Equal("", row[6]); }
            else
            {
                Assert.Equal(2, rates.Count);   // Q2 quantized: its weights are tracked
                Assert.Equal(MeanStd(rates).Mean, double.Parse(row[6], Inv), 1e-6 * Math.Abs(MeanStd(rates).Mean) + 1e-12);
                Assert.Equal("", row[10]);   // Q5 and Q6 in BF16: no random wgrad quantizer, no noise (ratio +∞, left out)
            }
        }
        var md = File.ReadAllText(Path.Combine(report, "ci.md"));
        Assert.Contains($"| 1 | only Q2 | {(means["BF16"] - means["only Q2"]).ToString("0.00", Inv)} ± ", md);
        Assert.Contains("Runs finished: 4 of 4", md);
        foreach (var png in new[] { "ci-curves.png", "ci-final.png" })
            Assert.True(OutputFormats.PngSize(File.ReadAllBytes(Path.Combine(report, png))).Width >= 600);

        // Resume: every run is finished, nothing trains, nothing in the run folders changes.
        var before = CliHarness.Snapshot(runs);
        var again = CliHarness.Run(Study(runs, report, "--resume"));
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(4, again.Out.Split('\n').Count(l => l.EndsWith("finished, skipped")));
        Assert.DoesNotContain("training into", again.Out);
        CliHarness.AssertUnchanged(before, runs);
        Assert.Equal(2, CliHarness.Run(Study(runs, report)).Code);   // without --resume a started study is refused

        // An interrupted run (checkpoint at step 2, no summary) is continued, and ends where the uninterrupted one did.
        string runs2 = Path.Combine(root, "runs2"), report2 = Path.Combine(root, "report2");
        var grid = StudyGrid.Load(gridFile);
        var cut = Path.Combine(runs2, "only-q2", "seed1");
        var partial = CliHarness.Run([.. grid.TrainArgs(grid.Cells[1], 1, cut, resume: false), "--checkpoint-every", "2", "--stop-after", "2"]);
        Assert.True(partial.Code == 0, partial.Err);
        Assert.False(File.Exists(Path.Combine(cut, "summary.json")));
        var resumed = CliHarness.Run(Study(runs2, report2, "--resume"));
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("[4/4] only Q2, seed 1: continuing the run in", resumed.Out);
        Assert.Contains("resuming at step 2 of 4", resumed.Out);
        Assert.Equal(3, resumed.Out.Split('\n').Count(l => l.Contains(": training into ")));
        Assert.Equal(File.ReadAllText(Path.Combine(report, "ci-runs.csv")).Split('\n').Select(l => string.Join(",", l.Split(',').SkipLast(1))),
            File.ReadAllText(Path.Combine(report2, "ci-runs.csv")).Split('\n').Select(l => string.Join(",", l.Split(',').SkipLast(1))));   // all but the wall time

        // The report again from the raw CSV alone (run folders gone, as on a later session elsewhere).
        var tableCsv = File.ReadAllText(Path.Combine(report, "ci.csv"));
        Directory.Delete(runs, recursive: true);
        var fromRaw = CliHarness.Run(Study(runs, report, "--report-only"));
        Assert.True(fromRaw.Code == 0, fromRaw.Err);
        Assert.Equal(tableCsv, File.ReadAllText(Path.Combine(report, "ci.csv")));
    }

    [Fact]
    public void Named_grids_are_valid_and_plan_three_seeds_per_cell()
    {
        foreach (var name in new[] { "gpt-recipes", "vit-recipes", "vit-ablation" })
        {
            var g = StudyGrid.Load(name);
            Assert.True(g.Seeds.Count >= 3);
            Assert.Contains(g.Cells, c => c.Name == "BF16");
        }
        Assert.Equal(8, StudyGrid.Load("gpt-recipes").Cells.Count);
        var ablation = StudyGrid.Load("vit-ablation");
        Assert.Equal(6, ablation.Ranking!.Cells.Count);
        // Each ablation cell's flags build a recipe with exactly its slot quantized.
        for (int s = 1; s <= 6; s++)
        {
            var cell = ablation.Cells.Single(c => c.Name == $"only Q{s}");
            var slots = cell.Args.Select((a, i) => (a, i)).Where(p => p.a == "--slot").Select(p => cell.Args[p.i + 1]).ToList();
            var recipe = new TrainOptions { Recipe = "tetrajet", Slots = slots }.BuildRecipe();
            for (int q = 1; q <= 6; q++) Assert.Equal(q == s, recipe.GetSlot((Slot)q).IsQuantized);
        }
        var dry = CliHarness.Run("experiment", "study", "--grid", "gpt-recipes", "--out", CliHarness.TempDir("dry"), "--report", CliHarness.TempDir("dryr"), "--dry-run");
        Assert.True(dry.Code == 0, dry.Err);
        Assert.Equal(24, dry.Out.Split('\n').Count(l => l.Contains(": tetrajet train gpt --size 70m")));
    }
}
