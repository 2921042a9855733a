using System.Diagnostics;
using System.Globalization;

namespace TetraJet.Cli.Study;

/// <summary>
/// <c>tetrajet experiment study</c>: runs every cell × seed of a grid that is not finished, one run folder each
/// (<c>&lt;out&gt;/&lt;cell&gt;/seed&lt;n&gt;</c>), then writes the raw results, the table and the plots into the report folder.
/// A run with a summary.json, or already in the report's raw results, is skipped; a run folder left by an
/// interrupted run is continued with <c>tetrajet train --resume</c> (from its checkpoint, or started over if it had
/// none yet).
/// </summary>
public static class StudyRunner
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public sealed record Options(StudyGrid Grid, string Out, string Report, bool Resume, bool ReportOnly, bool DryRun, IReadOnlyList<string>? Cells, string? Label);

    public static int Run(Options o, TextWriter stdout, TextWriter stderr, Interruption? interruption)
    {
        var grid = o.Grid;
        var cells = grid.Cells.ToList();
        if (o.Cells is { Count: > 0 } only)
        {
            foreach (var n in only)
                if (!cells.Any(c => c.Name == n)) throw new UsageException($"--cells: '{n}' is not a cell of {grid.Name} ({string.Join(", ", cells.Select(c => c.Name))})");
            cells = cells.Where(c => only.Contains(c.Name)).ToList();
        }
        if (File.Exists(o.Out)) throw new UsageException($"--out {o.Out} is a file; choose a folder");
        if (File.Exists(o.Report)) throw new UsageException($"--report {o.Report} is a file; choose a folder");
        var results = StudyResults.ReadReport(o.Report, grid);
        bool started = Directory.Exists(o.Out) && Directory.EnumerateFileSystemEntries(o.Out).Any();
        if (!o.ReportOnly && !o.DryRun && !o.Resume && (started || results.Runs.Count > 0))
            throw new UsageException(started
                ? $"{o.Out} already holds runs of a study; pass --resume to continue it (finished runs are skipped), or choose another --out"
                : $"{StudyResults.RunsPath(o.Report, grid)} already holds results of {grid.Name}; pass --resume to add to them, or choose another --report");

        int total = cells.Count * grid.Seeds.Count, index = 0, trained = 0;
        foreach (var cell in cells)
            foreach (var seed in grid.Seeds)
            {
                index++;
                string dir = StudyGrid.RunDir(o.Out, cell, seed);
                string what = $"[{index}/{total}] {cell.Name}, seed {seed}";
                var finished = StudyResults.FromRunDir(grid, cell, seed, dir);
                if (finished is { } f) { results.Set(f.Run, f.Curve); stdout.WriteLine($"{what}: finished, skipped"); continue; }
                if (results.Has(cell.Name, seed)) { stdout.WriteLine($"{what}: in {StudyResults.RunsPath(o.Report, grid)}, skipped"); continue; }
                if (o.ReportOnly) continue;
                bool resume = Trainer.HoldsRun(dir);
                var args = grid.TrainArgs(cell, seed, dir, resume);
                if (o.DryRun) { stdout.WriteLine($"{what}: tetrajet {string.Join(" ", args)}"); continue; }
                if (interruption?.Requested == true) return Stopped(interruption.ExitCode);
                stdout.WriteLine($"{what}: {(resume ? "continuing the run in" : "training into")} {dir}");
                Directory.CreateDirectory(dir);
                var clock = Stopwatch.StartNew();
                var err = new StringWriter();
                int code = Program.Run(args, stdout, new Tee(stderr, err), interruption);
                if (code == 1)
                {
                    // Not retried: a resume would repeat the same steps from the same checkpoint.
                    File.WriteAllText(Path.Combine(dir, StudyResults.DivergedMarker), err.ToString());
                    stdout.WriteLine($"{what}: diverged (non-finite loss); recorded as such, not retried");
                }
                else if (code != 0) return code >= 128 ? Stopped(code) : Failed(code, what);
                trained++;
                if (StudyResults.FromRunDir(grid, cell, seed, dir) is { } now)
                {
                    results.Set(now.Run, now.Curve);
                    // Written after every run, so that an interrupted study leaves its finished runs in the report.
                    Directory.CreateDirectory(o.Report);
                    results.Write(o.Report, grid);
                    if (now.Run.Metric is double m)
                        stdout.WriteLine($"{what}: done in {ProgressView.Eta(clock.Elapsed)}, {grid.Metric} {m.ToString("0.00", Inv)}");
                }
            }
        if (o.DryRun) return 0;
        WriteReport(o, results, stdout);
        return 0;

        int Stopped(int code)
        {
            Directory.CreateDirectory(o.Report);
            results.Write(o.Report, grid);
            stdout.WriteLine($"study {grid.Name} stopped; continue it with the same command and --resume");
            return code;
        }

        int Failed(int code, string what)
        {
            stderr.WriteLine($"error: {what}: 'tetrajet train' failed (exit {code}); the study stops here. Fix the cause and continue with --resume");
            return code;
        }
    }

    static void WriteReport(Options o, StudyResults results, TextWriter stdout)
    {
        var grid = o.Grid;
        Directory.CreateDirectory(o.Report);
        results.Write(o.Report, grid);
        var rows = StudyReport.Rows(grid, results);
        var md = StudyReport.Markdown(grid, rows, o.Label);
        string curves = $"{grid.Name}-curves.png", final = $"{grid.Name}-final.png";
        try
        {
            StudyPlots.WriteCurves(Path.Combine(o.Report, curves), grid, results);
            StudyPlots.WriteFinal(Path.Combine(o.Report, final), grid, rows, results);
            md += $"\n![validation curves]({curves})\n\n![final {grid.Metric} per cell]({final})\n";
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or PlotUnavailableException)
        {
            stdout.WriteLine($"plots not written: the plotting library's native part did not load ({e.GetBaseException().Message.Split('\n')[0]}); rerun with --report-only where it does");
        }
        File.WriteAllText(Path.Combine(o.Report, $"{grid.Name}.md"), md);
        File.WriteAllText(Path.Combine(o.Report, $"{grid.Name}.csv"), StudyReport.Csv(grid, rows));
        stdout.WriteLine();
        stdout.Write(md);
        stdout.WriteLine($"→ {Path.Combine(o.Report, grid.Name + ".md")}, {grid.Name}.csv, {grid.Name}-runs.csv, {grid.Name}-curves.csv and the plots");
    }

    /// <summary>Writes to both: the run's errors reach the console and the divergence marker.</summary>
    sealed class Tee(TextWriter a, TextWriter b) : TextWriter
    {
        public override System.Text.Encoding Encoding => a.Encoding;
        public override void Write(char value) { a.Write(value); b.Write(value); }
        public override void Write(string? value) { a.Write(value); b.Write(value); }
        public override void WriteLine(string? value) { a.WriteLine(value); b.WriteLine(value); }
    }
}
