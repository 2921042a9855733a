using System.CommandLine;

namespace TetraJet.Cli.Study;

/// <summary><c>tetrajet experiment study</c>: the multi-seed grid (docs/RESULTS.md, "The multi-seed study").</summary>
public static class StudyCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, Interruption? interruption)
    {
        var grid = new Option<string>("--grid")
        {
            Description = $"a named grid ({string.Join(", ", StudyGrids.All.Select(g => g.Name))}) or a grid JSON file",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "folder of the run folders (<out>/<cell>/seed<n>)", DefaultValueFactory = _ => Path.Combine("runs", "study") };
        var report = new Option<string>("--report") { Description = "folder for the table, the raw results and the plots", DefaultValueFactory = _ => Path.Combine("docs", "results") };
        var resume = new Option<bool>("--resume") { Description = "continue a study: skip finished runs, continue interrupted ones from their checkpoints" };
        var reportOnly = new Option<bool>("--report-only") { Description = "train nothing: write the table and plots from the finished runs and the report's raw results" };
        var dryRun = new Option<bool>("--dry-run") { Description = "print the 'tetrajet train' command of every run still to do, and stop" };
        var cells = new Option<string[]>("--cells") { Description = "run only these cells (by name, repeatable); the table still lists every cell", DefaultValueFactory = _ => [] };
        var label = new Option<string?>("--label") { Description = "a label for the table's title (e.g. 'CPU, tiny: demonstration only')" };
        var show = new Option<bool>("--show") { Description = "print the grid as JSON (a starting point for a grid file) and stop" };
        var cmd = new Command("study", "run a grid of model × recipe × option × seed, resumably, and write a table with mean ± std, gap closure and plots")
        {
            grid, output, report, resume, reportOnly, dryRun, cells, label, show,
        };
        cmd.SetAction(p =>
        {
            var g = StudyGrid.Load(p.GetValue(grid)!);
            if (p.GetValue(show))
            {
                stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(g, StudyGrid.Json));
                return 0;
            }
            return StudyRunner.Run(new StudyRunner.Options(g, p.GetValue(output)!, p.GetValue(report)!, p.GetValue(resume), p.GetValue(reportOnly),
                p.GetValue(dryRun), p.GetValue(cells), p.GetValue(label)), stdout, stderr, interruption);
        });
        return cmd;
    }
}
