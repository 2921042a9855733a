using Coordinates = ScottPlot.Coordinates;
using SkiaSharp;
using TetraJet.Cli;

namespace TetraJet.Models.Tests;

/// <summary>curves.png and compare's PNG: a valid image of the asked size, text drawn, no point hidden.</summary>
public class PlotTests
{
    /// <summary>A ViT-like run: falling loss, rising accuracy, an evaluation every 50 steps ending at 85.26%.</summary>
    static List<MetricsRow> Run(int steps = 300)
    {
        var rng = new Random(7);
        var rows = new List<MetricsRow>();
        for (int s = 1; s <= steps; s++)
        {
            double progress = (double)s / steps;
            double loss = 0.45 + 1.9 * Math.Exp(-4 * progress) + 0.08 * (rng.NextDouble() - 0.5);
            double acc = Math.Clamp(0.88 - 0.75 * Math.Exp(-4 * progress) + 0.1 * (rng.NextDouble() - 0.5), 0, 1);
            bool eval = s % 50 == 0;
            double? evalAcc = eval ? (s == steps ? 0.8526 : 0.8526 - 0.4 * (1 - progress)) : null;
            rows.Add(new MetricsRow(s, progress * 3, loss, 1e-3, acc, eval ? loss + 0.05 : null, evalAcc, null, 400, s / 4.0));
        }
        return rows;
    }

    static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new Xunit.Sdk.XunitException("the PNG does not decode");

    static bool Dark(SKColor c) => c.Red + c.Green + c.Blue < 3 * 110;

    [Fact]
    public void Run_curves_are_a_valid_png_of_two_panels()
    {
        var png = Plot.Render(RunPlots.For("vit", Run()), panelWidth: 640, height: 480);
        Assert.Equal((1280, 480), OutputFormats.PngSize(png));
        using var bitmap = Decode(png);
        Assert.Equal(1280, bitmap.Width);
        Assert.Equal(480, bitmap.Height);
        // Both halves hold a chart: each has dark pixels (axes, text) and coloured ones (curves).
        foreach (int x0 in new[] { 0, 640 })
        {
            int dark = 0, blue = 0;
            for (int y = 0; y < 480; y += 1)
                for (int x = x0; x < x0 + 640; x += 1)
                {
                    var c = bitmap.GetPixel(x, y);
                    if (Dark(c)) dark++;
                    if (c.Blue > 150 && c.Red < 90) blue++;
                }
            Assert.True(dark > 2000, $"panel at x={x0}: {dark} dark pixels");
            Assert.True(blue > 300, $"panel at x={x0}: {blue} blue pixels");
        }
    }

    [Fact]
    public void Titles_and_labels_are_drawn_in_the_shipped_font()
    {
        using (var typeface = PlotFont.Create()) Assert.Equal("DejaVu Sans", typeface.FamilyName);
        var panel = new Panel("Accuracy", RunPlots.StepAxis, RunPlots.AccuracyAxis, [new Series("test", Plot.Palette[1], [(0, 10), (100, 80)])]);
        using var bitmap = Decode(Plot.Render([panel], 640, 480));
        // The title is centred in the top band; the x-axis label sits under the tick labels.
        int titleInk = 0;
        for (int y = 2; y < 30; y++)
            for (int x = 260; x < 380; x++)
                if (Dark(bitmap.GetPixel(x, y))) titleInk++;
        Assert.True(titleInk > 60, $"title band has {titleInk} dark pixels: no text was drawn");
    }

    [Fact]
    public void Legend_and_value_labels_never_cover_a_point()
    {
        foreach (var panel in RunPlots.For("vit", Run()))
        {
            var plot = Plot.Build(panel, 640, 480);
            using var surface = SKSurface.Create(new SKImageInfo(640, 480));
            plot.Render(surface);
            using var image = surface.Snapshot();
            using var bitmap = SKBitmap.FromImage(image);
            // Every evaluation point, and the final point of every curve (drawn as a dot).
            foreach (var series in panel.Series)
                foreach (var (x, y) in series.Markers ? series.Points : series.Points.TakeLast(1))
                {
                    var px = plot.GetPixel(new Coordinates(x, y));
                    var c = bitmap.GetPixel((int)Math.Round(px.X), (int)Math.Round(px.Y));
                    // A curve's colour (its own, or a blend with another curve's where two points coincide): never the
                    // white of the background or the legend box, nor the grey of text and grid.
                    int chroma = Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue));
                    Assert.True(chroma > 80, $"{panel.Title}: point ({x}, {y}) of '{series.Name}' shows {c}, not a curve's colour: something covers it");
                }
        }
    }

    [Fact]
    public void Final_values_are_written_beside_the_last_points()
    {
        var rows = Run();
        var accuracy = RunPlots.For("vit", rows)[1];
        var plot = Plot.Build(accuracy, 640, 480);
        var labels = plot.GetPlottables().OfType<ScottPlot.Plottables.Text>().Select(t => t.LabelText).ToList();
        Assert.Contains("85.26%", labels);
        var lastTrain = RunPlots.For("vit", rows)[1].Series[0].Points[^1];
        Assert.Equal(300, lastTrain.X);
        Assert.Contains(accuracy.Format(lastTrain.Y), labels);

        var gpt = RunPlots.For("gpt", [.. rows.Select(r => r with { EvalAcc = null, EvalPpl = r.EvalLoss is double l ? Math.Exp(l) : null })]);
        var pplLabels = Plot.Build(gpt[1], 640, 480).GetPlottables().OfType<ScottPlot.Plottables.Text>().Select(t => t.LabelText);
        Assert.Contains(Math.Exp(rows[^1].EvalLoss!.Value).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), pplLabels);
    }

    [Fact]
    public void Axes_name_their_units()
    {
        var panels = RunPlots.For("vit", Run());
        Assert.All(panels, p => Assert.Equal("optimizer step", p.XLabel));
        Assert.Equal("cross-entropy loss (nats)", panels[0].YLabel);
        Assert.Equal("accuracy (%)", panels[1].YLabel);
        var plot = Plot.Build(panels[1], 640, 480);
        Assert.Equal("accuracy (%)", plot.Axes.Left.Label.Text);
        Assert.Equal("optimizer step", plot.Axes.Bottom.Label.Text);
    }

    [Fact]
    public void A_run_without_evaluations_still_plots()
    {
        var rows = Run(3).Select(r => r with { EvalLoss = null, EvalAcc = null }).ToList();
        var png = Plot.Render(RunPlots.For("vit", rows));
        Assert.Equal((1280, 480), OutputFormats.PngSize(png));
        var empty = Plot.Render([new Panel("Nothing", "x", "y", [])]);
        Assert.Equal((640, 480), OutputFormats.PngSize(empty));
    }
}
