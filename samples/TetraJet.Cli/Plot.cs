using System.Globalization;

namespace TetraJet.Cli;

/// <summary>One curve: a name, a colour and (x, y) points.</summary>
public sealed record Series(string Name, (byte R, byte G, byte B) Color, IReadOnlyList<(double X, double Y)> Points, int Thickness = 2);

/// <summary>One chart: a title, a y-axis label and its curves.</summary>
public sealed record Panel(string Title, string XLabel, IReadOnlyList<Series> Series);

/// <summary>Side-by-side line charts with axes, ticks and a legend.</summary>
public static class Plot
{
    public static readonly (byte, byte, byte)[] Palette =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ];

    static readonly (byte, byte, byte) Black = (0, 0, 0), Grid = (225, 225, 225), Gray = (90, 90, 90);

    public static byte[] Render(IReadOnlyList<Panel> panels, int panelWidth = 600, int height = 450)
    {
        var canvas = new Canvas(panelWidth * panels.Count, height);
        for (int i = 0; i < panels.Count; i++) Draw(canvas, panels[i], i * panelWidth, panelWidth, height);
        return canvas.EncodePng();
    }

    static void Draw(Canvas c, Panel p, int ox, int w, int h)
    {
        const int left = 80, right = 36, top = 40, bottom = 50;
        int x0 = ox + left, x1 = ox + w - right, y0 = top, y1 = h - bottom;
        c.Text(ox + (w - Canvas.TextWidth(p.Title)) / 2, 12, p.Title, Black);
        c.Text(ox + (w - Canvas.TextWidth(p.XLabel)) / 2, h - 20, p.XLabel, Gray);
        var pts = p.Series.SelectMany(s => s.Points).Where(q => double.IsFinite(q.X) && double.IsFinite(q.Y)).ToList();
        if (pts.Count == 0)
        {
            c.Text(x0 + 10, (y0 + y1) / 2, "no data", Gray);
            return;
        }
        var (xmin, xmax) = Range(pts.Min(q => q.X), pts.Max(q => q.X));
        var (ymin, ymax) = Range(pts.Min(q => q.Y), pts.Max(q => q.Y));
        var xt = Ticks(xmin, xmax); var yt = Ticks(ymin, ymax);
        xmin = Math.Min(xmin, xt[0]); xmax = Math.Max(xmax, xt[^1]); ymin = Math.Min(ymin, yt[0]); ymax = Math.Max(ymax, yt[^1]);
        double X(double v) => x0 + (v - xmin) / (xmax - xmin) * (x1 - x0);
        double Y(double v) => y1 - (v - ymin) / (ymax - ymin) * (y1 - y0);
        foreach (var t in yt)
        {
            c.Line(x0, Y(t), x1, Y(t), Grid);
            var label = Format(t);
            c.Text(x0 - 8 - Canvas.TextWidth(label), (int)Y(t) - 7, label, Gray);
        }
        foreach (var t in xt)
        {
            c.Line(X(t), y0, X(t), y1, Grid);
            var label = Format(t);
            c.Text((int)X(t) - Canvas.TextWidth(label) / 2, y1 + 8, label, Gray);
        }
        c.Line(x0, y1, x1, y1, Black); c.Line(x0, y0, x0, y1, Black);
        foreach (var s in p.Series)
        {
            var q = s.Points.Where(v => double.IsFinite(v.X) && double.IsFinite(v.Y)).ToList();
            for (int i = 1; i < q.Count; i++) c.Line(X(q[i - 1].X), Y(q[i - 1].Y), X(q[i].X), Y(q[i].Y), s.Color, s.Thickness);
            if (q.Count == 1) c.Fill((int)X(q[0].X) - 3, (int)Y(q[0].Y) - 3, 7, 7, s.Color);
        }
        int ly = y0 + 8;
        if (p.Series.Count > 0)
        {
            // An opaque box so that the legend stays readable where it covers a curve.
            int widest = p.Series.Max(s => Canvas.TextWidth(s.Name)) + 44;
            c.Fill(x1 - widest, y0 + 2, widest - 2, 20 * p.Series.Count + 8, (255, 255, 255));
        }
        foreach (var s in p.Series)
        {
            int tw = Canvas.TextWidth(s.Name);
            c.Fill(x1 - tw - 34, ly + 5, 20, 4, s.Color);
            c.Text(x1 - tw - 8, ly, s.Name, Black);
            ly += 20;
        }
    }

    static (double, double) Range(double lo, double hi)
    {
        if (hi - lo < 1e-12) { double pad = Math.Max(Math.Abs(lo) * 0.05, 1e-3); return (lo - pad, hi + pad); }
        return (lo, hi);
    }

    /// <summary>About five "nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].</summary>
    static double[] Ticks(double lo, double hi)
    {
        double raw = (hi - lo) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw))), f = raw / mag;
        double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
        var ticks = new List<double>();
        for (double t = Math.Floor(lo / step) * step; t <= hi + step * 0.999; t += step) ticks.Add(Math.Round(t / step) * step);
        return [.. ticks];
    }

    static string Format(double v)
    {
        double a = Math.Abs(v);
        return a >= 10000 ? v.ToString("0", CultureInfo.InvariantCulture)
            : a >= 10 || a == 0 ? v.ToString("0.#", CultureInfo.InvariantCulture)
            : a >= 0.01 ? v.ToString("0.###", CultureInfo.InvariantCulture)
            : v.ToString("0.#####", CultureInfo.InvariantCulture);
    }

    /// <summary>Moving average over a window that gives about 200 visible points.</summary>
    public static List<(double X, double Y)> Smooth(IReadOnlyList<(double X, double Y)> pts)
    {
        int win = Math.Max(1, pts.Count / 100);
        var o = new List<(double, double)>();
        for (int i = win - 1; i < pts.Count; i += Math.Max(1, win / 2))
        {
            double s = 0;
            for (int k = i - win + 1; k <= i; k++) s += pts[k].Y;
            o.Add((pts[i].X, s / win));
        }
        return o;
    }
}
