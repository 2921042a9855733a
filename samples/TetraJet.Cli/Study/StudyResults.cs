using System.Globalization;
using System.Text.Json;

namespace TetraJet.Cli.Study;

/// <summary>
/// The final numbers of one run of a grid, as <c>&lt;grid&gt;-runs.csv</c> keeps them: the metric (perplexity, or test
/// accuracy in %), r(W_Q) and the oscillating fraction of the last oscillation report, and the last sampled minimum
/// gradient-to-noise ratio. Status "diverged": the run stopped on a non-finite loss (no metric).
/// </summary>
public sealed record RunResult(string Cell, long Seed, string Status, long Steps, double? Metric, double? RateOfChange,
    double? OscillatingFraction, double? NoiseMin, double WallSeconds);

/// <summary>One evaluation of one run: <c>&lt;grid&gt;-curves.csv</c>.</summary>
public sealed record CurvePoint(string Cell, long Seed, long Step, double Metric);

/// <summary>
/// The raw results of a grid: read from the run folders, merged with those already in the report folder (runs whose
/// folders are gone, e.g. from an earlier session on another machine), written back as CSV. The table and plots are
/// computed from these files alone.
/// </summary>
public sealed class StudyResults
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    public const string RunsHeader = "cell,seed,status,steps,metric,rate_of_change,oscillating_fraction,noise_min,wall_s";
    public const string CurvesHeader = "cell,seed,step,metric";
    /// <summary>Written into a run folder whose run stopped on a non-finite loss: the study does not retry it.</summary>
    public const string DivergedMarker = "study-diverged.txt";

    public List<RunResult> Runs { get; } = [];
    public List<CurvePoint> Curves { get; } = [];

    public static string RunsPath(string reportDir, StudyGrid g) => Path.Combine(reportDir, $"{g.Name}-runs.csv");
    public static string CurvesPath(string reportDir, StudyGrid g) => Path.Combine(reportDir, $"{g.Name}-curves.csv");

    /// <summary>The results of the report folder's CSV files (none when they do not exist yet).</summary>
    public static StudyResults ReadReport(string reportDir, StudyGrid grid)
    {
        var r = new StudyResults();
        var runs = RunsPath(reportDir, grid);
        if (File.Exists(runs))
            foreach (var (n, line) in RunCsv.ReadLines(runs, RunsHeader, "tetrajet experiment study"))
            {
                var f = line.Split(',');
                if (f.Length != 9 || !long.TryParse(f[1], Inv, out long seed) || !long.TryParse(f[3], Inv, out long steps)
                    || !Opt(f[4], out var metric) || !Opt(f[5], out var rate) || !Opt(f[6], out var osc) || !Opt(f[7], out var noise)
                    || !double.TryParse(f[8], NumberStyles.Float, Inv, out double wall))
                    throw new UsageException($"{runs} line {n} is damaged ('{RunCsv.Shorten(line)}'); repair or delete that line");
                r.Runs.Add(new RunResult(f[0], seed, f[2], steps, metric, rate, osc, noise, wall));
            }
        var curves = CurvesPath(reportDir, grid);
        if (File.Exists(curves))
            foreach (var (n, line) in RunCsv.ReadLines(curves, CurvesHeader, "tetrajet experiment study"))
            {
                var f = line.Split(',');
                if (f.Length != 4 || !long.TryParse(f[1], Inv, out long seed) || !long.TryParse(f[2], Inv, out long step)
                    || !double.TryParse(f[3], NumberStyles.Float, Inv, out double v))
                    throw new UsageException($"{curves} line {n} is damaged ('{RunCsv.Shorten(line)}'); repair or delete that line");
                r.Curves.Add(new CurvePoint(f[0], seed, step, v));
            }
        return r;
    }

    static bool Opt(string s, out double? v)
    {
        v = null;
        if (s.Length == 0) return true;
        if (!double.TryParse(s, NumberStyles.Float, Inv, out var d)) return false;
        v = d;
        return true;
    }

    public bool Has(string cell, long seed) => Runs.Any(r => r.Cell == cell && r.Seed == seed);

    /// <summary>
    /// The finished run in <paramref name="dir"/> (summary.json, or the divergence marker), with its evaluation
    /// curve; null while it is not finished.
    /// </summary>
    public static (RunResult Run, List<CurvePoint> Curve)? FromRunDir(StudyGrid grid, StudyCell cell, long seed, string dir)
    {
        var summaryPath = Path.Combine(dir, "summary.json");
        var metricsPath = Path.Combine(dir, MetricsCsv.FileName);
        var rows = File.Exists(metricsPath) ? MetricsCsv.Read(metricsPath) : [];
        double? Eval(MetricsRow m) => grid.Model == "gpt" ? m.EvalPpl : m.EvalAcc * 100;
        var curve = rows.Where(m => Eval(m) is not null).Select(m => new CurvePoint(cell.Name, seed, m.Step, Eval(m)!.Value)).ToList();
        double? noise = rows.LastOrDefault(m => m.NoiseMin is not null)?.NoiseMin;
        if (File.Exists(Path.Combine(dir, DivergedMarker)))
            return (new RunResult(cell.Name, seed, "diverged", rows.Count == 0 ? 0 : rows[^1].Step, null, null, null, noise, rows.Count == 0 ? 0 : rows[^1].ElapsedSeconds), curve);
        if (!File.Exists(summaryPath)) return null;
        RunSummary s;
        try { s = JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(summaryPath))!; }
        catch (JsonException e) { throw new UsageException($"{summaryPath} is malformed ({e.Message}); delete it to rerun that run"); }
        double? metric = grid.Model == "gpt" ? s.EvalPerplexity : s.EvalAccuracy * 100;
        var (rate, osc) = LastOscillation(Path.Combine(dir, "oscillation.csv"));
        return (new RunResult(cell.Name, seed, "done", s.Steps, metric, rate, osc, noise, s.WallSeconds), curve);
    }

    static (double?, double?) LastOscillation(string path)
    {
        if (!File.Exists(path)) return (null, null);
        var last = File.ReadLines(path).Skip(1).LastOrDefault(l => l.Length > 0);
        if (last is null) return (null, null);
        var f = last.Split(',');
        return (double.Parse(f[2], Inv), double.Parse(f[3], Inv));
    }

    /// <summary>Replaces (or adds) a run's numbers and curve.</summary>
    public void Set(RunResult run, List<CurvePoint> curve)
    {
        Runs.RemoveAll(r => r.Cell == run.Cell && r.Seed == run.Seed);
        Curves.RemoveAll(c => c.Cell == run.Cell && c.Seed == run.Seed);
        Runs.Add(run);
        Curves.AddRange(curve);
    }

    /// <summary>Writes both CSV files, in the grid's cell and seed order.</summary>
    public void Write(string reportDir, StudyGrid grid)
    {
        int Order(string cell) => grid.Cells.ToList().FindIndex(c => c.Name == cell) is var i and >= 0 ? i : int.MaxValue;
        static string F(double? v) => v is double d ? d.ToString("R", Inv) : "";
        RunCsv.Rewrite(RunsPath(reportDir, grid), Runs.OrderBy(r => Order(r.Cell)).ThenBy(r => r.Seed).Select(r =>
            $"{r.Cell},{r.Seed},{r.Status},{r.Steps},{F(r.Metric)},{F(r.RateOfChange)},{F(r.OscillatingFraction)},{F(r.NoiseMin)},{r.WallSeconds.ToString("0.#", Inv)}")
            .Prepend(RunsHeader));
        RunCsv.Rewrite(CurvesPath(reportDir, grid), Curves.OrderBy(c => Order(c.Cell)).ThenBy(c => c.Seed).ThenBy(c => c.Step)
            .Select(c => $"{c.Cell},{c.Seed},{c.Step},{F(c.Metric)}").Prepend(CurvesHeader));
    }
}
