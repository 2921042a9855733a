using System.Globalization;
using System.Text.Json;

namespace TetraJet.Cli;

/// <summary><c>tetrajet compare</c>: several runs' curves in one PNG and a markdown table of final metrics.</summary>
public static class Compare
{
    public static int Run(string[] runs, string output, TextWriter stdout)
    {
        var inv = CultureInfo.InvariantCulture;
        CheckOutput(runs, output);
        var loaded = new List<(string Name, RunSummary? Summary, List<MetricsRow> Rows)>();
        foreach (var run in runs)
        {
            var metrics = Path.Combine(run, MetricsCsv.FileName);
            if (!File.Exists(metrics)) throw new UsageException($"{run} holds no {MetricsCsv.FileName}; pass run folders written by 'tetrajet train'");
            var summaryPath = Path.Combine(run, "summary.json");
            RunSummary? summary = null;
            if (File.Exists(summaryPath))
            {
                try { summary = JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(summaryPath)); }
                catch (JsonException e) { throw new UsageException($"{summaryPath} is malformed ({e.Message}); re-run or remove it"); }
            }
            loaded.Add((Path.GetFileName(Path.TrimEndingDirectorySeparator(run)), summary, MetricsCsv.Read(metrics)));
        }
        bool gpt = loaded.Any(l => l.Summary?.Model == "gpt" || l.Rows.Any(r => r.EvalPpl.HasValue));
        var lossSeries = new List<Series>();
        var evalSeries = new List<Series>();
        for (int i = 0; i < loaded.Count; i++)
        {
            var (name, _, rows) = loaded[i];
            var color = Plot.Palette[i % Plot.Palette.Length];
            lossSeries.Add(new Series(name, color, Plot.Smooth(rows.Select(r => ((double)r.Step, r.Loss)).ToList())));
            evalSeries.Add(new Series(name, color, gpt
                ? rows.Where(r => r.EvalPpl.HasValue).Select(r => ((double)r.Step, r.EvalPpl!.Value)).ToList()
                : rows.Where(r => r.EvalAcc.HasValue).Select(r => ((double)r.Step, 100 * r.EvalAcc!.Value)).ToList(), Markers: true));
        }
        Panel[] panels =
        [
            new Panel("Training loss (moving average)", RunPlots.StepAxis, RunPlots.LossAxis, lossSeries),
            gpt ? new Panel("Validation perplexity", RunPlots.StepAxis, RunPlots.PerplexityAxis, evalSeries, RunPlots.Decimal2)
                : new Panel("Test accuracy", RunPlots.StepAxis, RunPlots.AccuracyAxis, evalSeries, RunPlots.Percent),
        ];
        byte[] png;
        try { png = Plot.Render(panels); }
        catch (PlotUnavailableException e) { throw new UsageException($"compare cannot plot in this build: {e.Message}"); }
        var folder = Path.GetDirectoryName(Path.GetFullPath(output))!;
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(output, png);

        stdout.WriteLine("| run | model | recipe | steps | train loss (last 20 steps) | eval loss | " + (gpt ? "perplexity" : "test accuracy") + " | wall time | throughput |");
        stdout.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, s, rows) in loaded)
        {
            var last = rows.LastOrDefault();
            var lastEval = rows.LastOrDefault(r => r.EvalLoss.HasValue);
            double? evalLoss = s?.EvalLoss ?? lastEval?.EvalLoss;
            double? metric = gpt ? s?.EvalPerplexity ?? lastEval?.EvalPpl : s?.EvalAccuracy ?? lastEval?.EvalAcc;
            string metricText = metric is double m ? (gpt ? m.ToString("0.00", inv) : (100 * m).ToString("0.00", inv) + "%") : "–";
            double meanLoss = rows.Count == 0 ? double.NaN : rows.Skip(Math.Max(0, rows.Count - 20)).Average(r => r.Loss);
            stdout.WriteLine($"| {name} | {s?.Model ?? "?"} {s?.Size} | {s?.Recipe ?? "?"} | {last?.Step ?? 0} | {meanLoss.ToString("0.0000", inv)} | " +
                $"{(evalLoss is double el ? el.ToString("0.0000", inv) : "–")} | {metricText} | " +
                $"{(s is null ? "unfinished" : ProgressView.Eta(TimeSpan.FromSeconds(s.WallSeconds)))} | " +
                $"{(s is null ? "–" : s.Throughput.ToString("0", inv) + " " + s.ThroughputUnit)} |");
        }
        stdout.WriteLine($"curves: {output}");
        return 0;
    }

    /// <summary>The plot must not land in a run folder (it would replace a run's file) or on a folder.</summary>
    static void CheckOutput(string[] runs, string output)
    {
        if (Directory.Exists(output)) throw new UsageException($"--out {output} is a folder; give a file name such as {Path.Combine(output, "compare.png")}");
        var full = Path.GetFullPath(output);
        var folder = Path.GetDirectoryName(full)!;
        bool inRun = Trainer.HoldsRun(folder) || runs.Any(r => string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(r)), folder, StringComparison.Ordinal));
        if (inRun) throw new UsageException($"--out {output} is inside the run folder {folder}; write the plot elsewhere, e.g. {Path.Combine(Path.GetDirectoryName(folder) ?? ".", "compare.png")}");
    }
}
