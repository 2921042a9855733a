using System.Globalization;

namespace TetraJet.Cli;

/// <summary>Curves of one run, as curves.png shows them: loss, and accuracy (ViT) or perplexity (GPT), against the step.</summary>
public static class RunPlots
{
    public const string StepAxis = "optimizer step";
    public const string LossAxis = "cross-entropy loss (nats)";
    public const string AccuracyAxis = "accuracy (%)";
    public const string PerplexityAxis = "perplexity (exp of loss per token)";

    public static string Percent(double v) => v.ToString("0.00", CultureInfo.InvariantCulture) + "%";
    public static string Decimal2(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);

    /// <summary>
    /// Writes curves.png; in a build without the plotting library's native part (the GPU machine's) writes a note to
    /// <paramref name="log"/> instead, so that a finished run still finishes.
    /// </summary>
    public static void WriteCurves(string path, string model, IReadOnlyList<MetricsRow> rows, TextWriter log)
    {
        try { File.WriteAllBytes(path, Plot.Render(For(model, rows))); }
        catch (PlotUnavailableException e) { log.WriteLine($"note: {Path.GetFileName(path)} not written: {e.Message}"); }
    }

    public static Panel[] For(string model, IReadOnlyList<MetricsRow> rows, string name = "train")
    {
        var loss = Plot.Smooth(rows.Select(r => ((double)r.Step, r.Loss)).ToList());
        var evalLoss = rows.Where(r => r.EvalLoss.HasValue).Select(r => ((double)r.Step, r.EvalLoss!.Value)).ToList();
        var evalName = model == "gpt" ? "validation" : "test";
        var lossPanel = new Panel("Loss", StepAxis, LossAxis,
            [new Series($"{name} (moving average)", Plot.Palette[0], loss), new Series(evalName, Plot.Palette[1], evalLoss, Markers: true)]);
        Panel second = model == "gpt"
            ? new Panel("Validation perplexity", StepAxis, PerplexityAxis,
                [new Series(evalName, Plot.Palette[1], rows.Where(r => r.EvalPpl.HasValue).Select(r => ((double)r.Step, r.EvalPpl!.Value)).ToList(), Markers: true)],
                Decimal2)
            : new Panel("Accuracy", StepAxis, AccuracyAxis,
            [
                new Series($"{name} batches (moving average)", Plot.Palette[0], Plot.Smooth(rows.Where(r => r.TrainAcc.HasValue).Select(r => ((double)r.Step, 100 * r.TrainAcc!.Value)).ToList())),
                new Series(evalName, Plot.Palette[1], rows.Where(r => r.EvalAcc.HasValue).Select(r => ((double)r.Step, 100 * r.EvalAcc!.Value)).ToList(), Markers: true),
            ], Percent);
        return [lossPanel, second];
    }
}
