using ScottPlot;

namespace TetraJet.Cli.Study;

/// <summary>
/// The study's two plots: the validation curves of each cell as the mean over seeds with a band of ± one standard
/// deviation, and the final metric per cell as the mean with ± one standard deviation error bars.
/// </summary>
public static class StudyPlots
{
    const int Width = 900, Height = 560;

    static ScottPlot.Plot NewPlot(string title, string x, string y)
    {
        PlotFont.Install();
        var plot = new ScottPlot.Plot();
        plot.Font.Set(PlotFont.Name);
        plot.Title(title, 17);
        plot.XLabel(x, 14);
        plot.YLabel(y, 14);
        return plot;
    }

    static Color ColorOf(int i)
    {
        var (r, g, b) = Plot.Palette[i % Plot.Palette.Length];
        return new Color(r, g, b);
    }

    static string YLabel(StudyGrid grid) => grid.Model == "gpt" ? "validation perplexity" : "test accuracy (%)";

    /// <summary>Curves: at each evaluated step the mean over the seeds that reached it; the band where two or more did.</summary>
    public static void WriteCurves(string path, StudyGrid grid, StudyResults results)
    {
        var plot = NewPlot($"{grid.Name}: {YLabel(grid)} (mean, band ± 1 std over seeds)", "optimizer step", YLabel(grid));
        bool any = false;
        for (int i = 0; i < grid.Cells.Count; i++)
        {
            var cell = grid.Cells[i].Name;
            var points = results.Curves.Where(c => c.Cell == cell && results.Runs.Any(r => r.Cell == cell && r.Seed == c.Seed && r.Status == "done"))
                .GroupBy(c => c.Step).OrderBy(g => g.Key).Select(g => (Step: (double)g.Key, Stats: SeedStats.Of(g.Select(c => c.Metric)))).ToArray();
            if (points.Length == 0) continue;
            any = true;
            var color = ColorOf(i);
            var banded = points.Where(p => p.Stats.N > 1).ToArray();
            if (banded.Length > 1)
            {
                var band = plot.Add.FillY(banded.Select(p => p.Step).ToArray(),
                    banded.Select(p => p.Stats.Mean - p.Stats.Std).ToArray(), banded.Select(p => p.Stats.Mean + p.Stats.Std).ToArray());
                band.FillColor = color.WithAlpha(0.2);
                band.LineWidth = 0;
            }
            var line = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Stats.Mean).ToArray(), color);
            line.LegendText = cell;
            line.LineWidth = 2;
            line.MarkerSize = 5;
        }
        if (!any) plot.Add.Text("no finished runs yet", 0.5, 0.5);
        plot.Legend.FontSize = 13;
        plot.ShowLegend(Edge.Bottom);
        plot.SavePng(path, Width, Height);
    }

    /// <summary>Final metric per cell: mean and ± 1 std error bars (the individual seeds as small dots).</summary>
    public static void WriteFinal(string path, StudyGrid grid, List<StudyReport.CellRow> rows, StudyResults results)
    {
        var plot = NewPlot($"{grid.Name}: final {YLabel(grid)} (mean ± 1 std over seeds)", "", YLabel(grid));
        var ticks = new List<Tick>();
        for (int i = 0; i < rows.Count; i++)
        {
            var s = rows[i].Metric;
            ticks.Add(new Tick(i, rows[i].Cell.Name));
            if (s.N == 0) continue;
            var color = ColorOf(i);
            foreach (var run in results.Runs.Where(r => r.Cell == rows[i].Cell.Name && r.Status == "done" && r.Metric is not null && grid.Seeds.Contains(r.Seed)))
                plot.Add.Marker(i + 0.12, run.Metric!.Value, MarkerShape.OpenCircle, 6, color);
            var mean = plot.Add.Marker(i, s.Mean, MarkerShape.FilledCircle, 11, color);
            mean.LegendText = "";
            if (s.N > 1)
            {
                var bar = plot.Add.ErrorBar([(double)i], [s.Mean], [s.Std]);
                bar.Color = color;
                bar.LineWidth = 2;
            }
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        // Room below the axis for the slanted cell names (ScottPlot sizes the axis for upright labels).
        plot.Axes.Bottom.MinimumSize = 40 + 7.5f * rows.Max(r => r.Cell.Name.Length) * 0.5f;
        plot.Axes.SetLimitsX(-0.7, rows.Count - 0.3);
        plot.SavePng(path, Width, Height);
    }
}
