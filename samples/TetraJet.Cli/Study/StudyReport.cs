using System.Globalization;
using System.Text;

namespace TetraJet.Cli.Study;

/// <summary>
/// The table of a grid from its raw results: per cell the mean ± standard deviation over seeds of the metric, r(W_Q),
/// the oscillating fraction and the last minimum gradient-to-noise ratio; then the gap-closure figures and the
/// ranking. Written as <c>&lt;grid&gt;.md</c> and <c>&lt;grid&gt;.csv</c>.
/// </summary>
public static class StudyReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    public const string TableHeader = "cell,runs,diverged,metric,metric_mean,metric_std,rate_of_change_mean,rate_of_change_std,oscillating_fraction_mean,oscillating_fraction_std,noise_min_mean,noise_min_std";

    public sealed record CellRow(StudyCell Cell, int Diverged, SeedStats Metric, SeedStats Rate, SeedStats Oscillating, SeedStats Noise);

    public static List<CellRow> Rows(StudyGrid grid, StudyResults results) => grid.Cells.Select(c =>
    {
        var runs = results.Runs.Where(r => r.Cell == c.Name && grid.Seeds.Contains(r.Seed)).ToList();
        var done = runs.Where(r => r.Status == "done").ToList();
        return new CellRow(c, runs.Count(r => r.Status == "diverged"),
            SeedStats.Of(done.Where(r => r.Metric is not null).Select(r => r.Metric!.Value)),
            SeedStats.Of(done.Where(r => r.RateOfChange is not null).Select(r => r.RateOfChange!.Value)),
            SeedStats.Of(done.Where(r => r.OscillatingFraction is not null).Select(r => r.OscillatingFraction!.Value)),
            SeedStats.Of(done.Where(r => r.NoiseMin is not null && double.IsFinite(r.NoiseMin.Value)).Select(r => r.NoiseMin!.Value)));
    }).ToList();

    static string R(double v) => double.IsNaN(v) ? "" : v.ToString("R", Inv);

    public static string Csv(StudyGrid grid, List<CellRow> rows)
    {
        var sb = new StringBuilder(TableHeader + "\n");
        foreach (var r in rows)
            sb.Append($"{r.Cell.Name},{r.Metric.N},{r.Diverged},{grid.Metric},{R(r.Metric.Mean)},{R(r.Metric.Std)},{R(r.Rate.Mean)},{R(r.Rate.Std)}," +
                $"{R(r.Oscillating.Mean)},{R(r.Oscillating.Std)},{R(r.Noise.Mean)},{R(r.Noise.Std)}\n");
        return sb.ToString();
    }

    static string Pm(SeedStats s, string format, double scale = 1) =>
        s.N == 0 ? "–" : (s.Mean * scale).ToString(format, Inv) + (s.N > 1 ? " ± " + (s.Std * scale).ToString(format, Inv) : "");

    public static string Markdown(StudyGrid grid, List<CellRow> rows, string? label = null)
    {
        var sb = new StringBuilder();
        string metric = grid.Model == "gpt" ? "validation perplexity" : "test accuracy (%)";
        sb.AppendLine($"### {grid.Name}{(label is null ? "" : " — " + label)}");
        sb.AppendLine();
        if (grid.Description.Length > 0) sb.AppendLine(grid.Description + ".");
        int done = rows.Sum(r => r.Metric.N + r.Diverged), planned = grid.Cells.Count * grid.Seeds.Count;
        sb.AppendLine($"Runs finished: {done} of {planned} ({grid.Cells.Count} cells × {grid.Seeds.Count} seeds). Mean ± sample standard deviation over the finished seeds.");
        sb.AppendLine();
        sb.AppendLine($"| cell | seeds | {metric} | r(W_Q) | oscillating (%) | g/n min |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Cell.Name} | {r.Metric.N}{(r.Diverged > 0 ? $" (+{r.Diverged} diverged)" : "")} | {Pm(r.Metric, "0.00")} | " +
                $"{Pm(r.Rate, "0.00000")} | {Pm(r.Oscillating, "0.00", 100)} | {Pm(r.Noise, "0.00")} |");
        var byName = rows.ToDictionary(r => r.Cell.Name);
        if (grid.Gaps.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Gap closed, (m_reference − m_candidate) / (m_reference − m_baseline), ± its standard error (delta method over the seeds' means):");
            sb.AppendLine();
            sb.AppendLine("| candidate | reference | baseline | gap closed |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var g in grid.Gaps)
            {
                var (rf, cd, bs) = (byName[g.Reference].Metric, byName[g.Candidate].Metric, byName[g.Baseline].Metric);
                string text = rf.N == 0 || cd.N == 0 || bs.N == 0 ? "–" : Gap(StudyFigures.GapClosed(rf, cd, bs));
                sb.AppendLine($"| {g.Candidate} | {g.Reference} | {g.Baseline} | {text} |");
            }
        }
        if (grid.Ranking is { } rank)
        {
            sb.AppendLine();
            sb.AppendLine($"Ranking by degradation against {rank.Baseline} ({(grid.LowerIsBetter ? "perplexity gained" : "accuracy points lost")}, ± standard error), worst first:");
            sb.AppendLine();
            sb.AppendLine("| rank | cell | degradation |");
            sb.AppendLine("|---|---|---|");
            int i = 1;
            foreach (var (name, d, se) in Ranked(grid, rows))
                sb.AppendLine($"| {i++} | {name} | {d.ToString("0.00", Inv)}{(double.IsNaN(se) ? "" : " ± " + se.ToString("0.00", Inv))} |");
        }
        return sb.ToString();
    }

    static string Gap((double Gap, double Se) g) =>
        (100 * g.Gap).ToString("0.0", Inv) + "%" + (double.IsNaN(g.Se) ? "" : " ± " + (100 * g.Se).ToString("0.0", Inv) + "%");

    /// <summary>The ranking's cells with a finished run, worst first.</summary>
    public static List<(string Cell, double Degradation, double Se)> Ranked(StudyGrid grid, List<CellRow> rows)
    {
        if (grid.Ranking is not { } rank) return [];
        var baseline = rows.Single(r => r.Cell.Name == rank.Baseline).Metric;
        if (baseline.N == 0) return [];
        return rank.Cells.Select(c => rows.Single(r => r.Cell.Name == c).Metric).Zip(rank.Cells)
            .Where(p => p.First.N > 0)
            .Select(p => { var (d, se) = StudyFigures.Degradation(p.First, baseline, grid.LowerIsBetter); return (p.Second, d, se); })
            .OrderByDescending(p => p.d).ToList();
    }
}
