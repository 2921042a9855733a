using System.CommandLine;
using TetraJet.Models.Experiments;

namespace TetraJet.Cli;

/// <summary>
/// <c>tetrajet experiment oscillation</c>: the remedies of ALGORITHMS.md §5 side by side, as a markdown table;
/// <c>tetrajet experiment study</c>: the multi-seed grid (Study/).
/// </summary>
public static class ExperimentCommand
{
    public static Command Create(TextWriter stdout, TextWriter? stderr = null, Interruption? interruption = null)
    {
        var steps = new Option<int>("--steps") { Description = "training steps per variant", DefaultValueFactory = _ => 400 };
        var seed = new Option<int>("--seed") { Description = "seed of the teacher, the data and the student", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "also write the markdown table to this file" };
        var oscillation = new Command("oscillation", "r(W_Q) and loss of TetraJet ± Q-EMA/Q-Ramping and TetraJet-v2 ± OsciReset/OutControl on a model made to oscillate")
        {
            steps, seed, output,
        };
        oscillation.SetAction(p =>
        {
            int n = p.GetValue(steps);
            if (n < 20) throw new UsageException("--steps must be at least 20");
            var path = p.GetValue(output);
            if (path is not null)
            {
                // Checked before the experiment runs, so that minutes of training are not lost to a bad path.
                if (Directory.Exists(path)) throw new UsageException($"--out {path} is a folder; give a file name such as {Path.Combine(path, "oscillation.md")}");
                var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
                if (!Directory.Exists(folder)) throw new UsageException($"--out {path}: the folder {folder} does not exist; create it or choose another path");
            }
            stdout.WriteLine($"oscillation experiment: {n} steps per variant, seed {p.GetValue(seed)}");
            var results = OscillationExperiment.Run(n, p.GetValue(seed), stdout.WriteLine);
            var table = OscillationExperiment.Markdown(results);
            stdout.WriteLine();
            stdout.Write(table);
            if (path is not null) File.WriteAllText(path, table);
            return 0;
        });
        return new Command("experiment", "experiments that reproduce the papers' findings")
        {
            oscillation, Study.StudyCommand.Create(stdout, stderr ?? TextWriter.Null, interruption),
        };
    }
}
