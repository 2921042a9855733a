namespace TetraJet.Cli;

/// <summary>Curves of one run, as plots show them.</summary>
public static class RunPlots
{
    public static Panel[] For(string model, IReadOnlyList<MetricsRow> rows, string name = "train")
    {
        var loss = Plot.Smooth(rows.Select(r => ((double)r.Step, r.Loss)).ToList());
        var evalLoss = rows.Where(r => r.EvalLoss.HasValue).Select(r => ((double)r.Step, r.EvalLoss!.Value)).ToList();
        var lossPanel = new Panel("loss", "step", [new Series(name, Plot.Palette[0], loss), new Series("eval", Plot.Palette[1], evalLoss, 3)]);
        Panel second = model == "gpt"
            ? new Panel("validation perplexity", "step", [new Series("eval", Plot.Palette[1], rows.Where(r => r.EvalPpl.HasValue).Select(r => ((double)r.Step, r.EvalPpl!.Value)).ToList(), 3)])
            : new Panel("accuracy %", "step",
            [
                new Series("train", Plot.Palette[0], Plot.Smooth(rows.Where(r => r.TrainAcc.HasValue).Select(r => ((double)r.Step, 100 * r.TrainAcc!.Value)).ToList())),
                new Series("test", Plot.Palette[1], rows.Where(r => r.EvalAcc.HasValue).Select(r => ((double)r.Step, 100 * r.EvalAcc!.Value)).ToList(), 3),
            ]);
        return [lossPanel, second];
    }
}
