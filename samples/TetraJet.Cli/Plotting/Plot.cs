using System.Globalization;
using ScottPlot;
using SkiaSharp;

namespace TetraJet.Cli;

/// <summary>One curve: a legend name, a colour and (x, y) points; <paramref name="Markers"/> for sparse points (evaluations).</summary>
public sealed record Series(string Name, (byte R, byte G, byte B) Color, IReadOnlyList<(double X, double Y)> Points, bool Markers = false);

/// <summary>One chart: a title, both axis labels (with units), its curves and how a final value is written.</summary>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, Func<double, string>? FormatValue = null)
{
    /// <summary>The label of a curve's final value: three significant decimals unless the panel says otherwise.</summary>
    public string Format(double v) => FormatValue?.Invoke(v) ?? v.ToString(Math.Abs(v) >= 100 ? "0.0" : "0.000", CultureInfo.InvariantCulture);
}

/// <summary>The plotting library's native part (libSkiaSharp) is not in this build or does not load.</summary>
public sealed class PlotUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Side-by-side line charts drawn with ScottPlot into one PNG. The legend sits below each chart, outside the data
/// area, so that it never hides a point; each curve's final value is written beside its last point, in a margin
/// kept free of data on the right.
/// </summary>
public static class Plot
{
    public static readonly (byte, byte, byte)[] Palette =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ];

    const float TitleSize = 17, AxisLabelSize = 14, TickSize = 12, LegendSize = 13, ValueSize = 13;

    /// <summary>The panels side by side, <paramref name="panelWidth"/> × <paramref name="height"/> pixels each, as PNG bytes.</summary>
    public static byte[] Render(IReadOnlyList<Panel> panels, int panelWidth = 640, int height = 480)
    {
        if (panels.Count == 0) throw new ArgumentException("nothing to plot: no panels");
        try { return RenderPng(panels, panelWidth, height); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            // One line: the loader's message lists every path it tried.
            throw new PlotUnavailableException(
                "the plotting library's native part (libSkiaSharp) did not load; builds with -p:LibTorch=external leave it out " +
                $"({e.GetBaseException().Message.Split('\n')[0].Trim()})", e);
        }
    }

    static byte[] RenderPng(IReadOnlyList<Panel> panels, int panelWidth, int height)
    {
        PlotFont.Install();
        var info = new SKImageInfo(panelWidth * panels.Count, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"could not allocate a {info.Width}×{height} image");
        surface.Canvas.Clear(SKColors.White);
        for (int i = 0; i < panels.Count; i++)
        {
            // Each chart on its own surface: ScottPlot clears the whole canvas it renders to.
            using var panel = SKSurface.Create(new SKImageInfo(panelWidth, height, SKColorType.Rgba8888, SKAlphaType.Premul))
                ?? throw new InvalidOperationException($"could not allocate a {panelWidth}×{height} image");
            Build(panels[i], panelWidth, height).Render(panel);
            using var chart = panel.Snapshot();
            surface.Canvas.DrawImage(chart, i * panelWidth, 0);
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    /// <summary>The ScottPlot chart of one panel, ready to render at <paramref name="width"/> × <paramref name="height"/>.</summary>
    internal static ScottPlot.Plot Build(Panel p, int width, int height)
    {
        var plot = new ScottPlot.Plot();
        plot.Font.Set(PlotFont.Name);
        plot.Title(p.Title, TitleSize);
        plot.XLabel(p.XLabel, AxisLabelSize);
        plot.YLabel(p.YLabel, AxisLabelSize);
        plot.Axes.Bottom.TickLabelStyle.FontSize = TickSize;
        plot.Axes.Left.TickLabelStyle.FontSize = TickSize;

        var curves = p.Series
            .Select(s => (Series: s, Points: s.Points.Where(q => double.IsFinite(q.X) && double.IsFinite(q.Y)).ToArray()))
            .ToList();
        var all = curves.SelectMany(c => c.Points).ToList();
        if (all.Count == 0)
        {
            var empty = plot.Add.Text("no data yet", 0.5, 0.5);
            empty.LabelFontSize = AxisLabelSize;
            empty.LabelAlignment = Alignment.MiddleCenter;
            plot.Axes.SetLimits(0, 1, 0, 1);
            return plot;
        }

        var finals = new List<(Series Series, double X, double Y, string Text)>();
        foreach (var (s, pts) in curves)
        {
            var color = new Color(s.Color.R, s.Color.G, s.Color.B);
            var line = plot.Add.Scatter(pts.Select(q => q.X).ToArray(), pts.Select(q => q.Y).ToArray(), color);
            line.LegendText = s.Name;
            line.LineWidth = s.Markers ? 1.5f : 2f;
            line.MarkerSize = s.Markers ? 7 : 0;
            if (pts.Length == 0) continue;
            var last = pts[^1];
            var dot = plot.Add.Marker(last.X, last.Y, MarkerShape.FilledCircle, 9, color);
            dot.LegendText = "";
            finals.Add((s, last.X, last.Y, p.Format(last.Y)));
        }

        // Axis limits: the data, 6% headroom above and below, and on the right a margin as wide as the longest value label.
        double xmin = all.Min(q => q.X), xmax = all.Max(q => q.X), ymin = all.Min(q => q.Y), ymax = all.Max(q => q.Y);
        if (xmax - xmin <= 0) { xmin -= 0.5; xmax += 0.5; }
        if (ymax - ymin <= 1e-12 * Math.Max(1, Math.Abs(ymax))) { double pad = Math.Max(Math.Abs(ymax) * 0.05, 1e-3); ymin -= pad; ymax += pad; }
        double yPad = 0.06 * (ymax - ymin);
        ymin -= yPad; ymax += yPad;
        double dataWidthPx = Math.Max(200, width - 110);          // the panel less the y-axis labels and the frame
        double dataHeightPx = Math.Max(150, height - 150);         // less title, x-axis labels and the legend row
        double labelPx = finals.Count == 0 ? 0 : 16 + finals.Max(f => f.Text.Length) * ValueSize * 0.62;
        double fraction = Math.Min(0.35, labelPx / dataWidthPx);
        double xRight = xmax + (xmax - xmin) * fraction / (1 - fraction);
        double xLeft = xmin - 0.015 * (xRight - xmin);   // room for a marker on the first point

        // Value labels: at their curve's final height, pushed apart where two would overlap.
        double gap = (ValueSize + 4) * (ymax - ymin) / dataHeightPx;
        var placed = finals.OrderBy(f => f.Y).Select(f => (f.Series, f.X, f.Y, f.Text, LabelY: f.Y)).ToList();
        for (int i = 1; i < placed.Count; i++)
            if (placed[i].LabelY < placed[i - 1].LabelY + gap) placed[i] = placed[i] with { LabelY = placed[i - 1].LabelY + gap };
        if (placed.Count > 0) ymax = Math.Max(ymax, placed[^1].LabelY + gap / 2);
        foreach (var f in placed)
        {
            var text = plot.Add.Text(f.Text, f.X, f.LabelY);
            text.LabelFontSize = ValueSize;
            text.LabelFontColor = new Color(f.Series.Color.R, f.Series.Color.G, f.Series.Color.B);
            text.LabelAlignment = Alignment.MiddleLeft;
            text.OffsetX = 9;
        }
        plot.Axes.SetLimits(xLeft, xRight, ymin, ymax);

        plot.Legend.FontSize = LegendSize;
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    /// <summary>
    /// Moving average over a twenty-fifth of the points (noisy per-batch numbers read as a trend), sampled every
    /// quarter window; the last window always ends at the last point, so that the curve (and its value label)
    /// reaches the final step.
    /// </summary>
    public static List<(double X, double Y)> Smooth(IReadOnlyList<(double X, double Y)> pts)
    {
        int win = Math.Max(1, pts.Count / 25);
        var o = new List<(double, double)>();
        double Mean(int end)
        {
            double s = 0;
            for (int k = end - win + 1; k <= end; k++) s += pts[k].Y;
            return s / win;
        }
        int i = win - 1;
        int stride = Math.Max(1, win / 4);
        for (; i < pts.Count; i += stride) o.Add((pts[i].X, Mean(i)));
        if (pts.Count >= win && i - stride != pts.Count - 1) o.Add((pts[^1].X, Mean(pts.Count - 1)));
        return o;
    }
}
