using System.Diagnostics;
using System.Runtime.InteropServices;
using TetraJet.Cli;
using TetraJet.Models.Training;

namespace TetraJet.Models.Tests;

/// <summary>
/// Runs that survive interruption: Ctrl-C and SIGTERM, kills before the first checkpoint, two runs on one folder,
/// damaged files, and resumes whose metrics, oscillation windows and TensorBoard stream match an uninterrupted run.
/// </summary>
public partial class RunFolderTests
{
    static List<MetricsRow> Metrics(string dir) => MetricsCsv.Read(Path.Combine(dir, MetricsCsv.FileName));

    static void AssertOneErrorLine((int Code, string Out, string Err) r, string expected)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
    }

    /// <summary>The losses, learning rates and evaluations of a run, without the timings.</summary>
    static List<(long, double, double, double?, double?, double?)> Numbers(string dir) =>
        Metrics(dir).Select(r => (r.Step, r.Loss, r.Lr, r.TrainAcc, r.EvalLoss, r.EvalAcc)).ToList();

    /// <summary>Every TensorBoard scalar of the run folder except the timing ones, in file order.</summary>
    static List<(string Tag, float Value, long Step)> Scalars(string dir)
    {
        var files = Directory.GetFiles(dir, TfEventsWriter.Prefix + "*");
        Assert.Single(files);
        return OutputFormats.ReadScalars(File.ReadAllBytes(files[0])).Where(s => !s.Tag.EndsWith("_per_s", StringComparison.Ordinal)).ToList();
    }

    static string Oscillation(string dir) => File.ReadAllText(Path.Combine(dir, "oscillation.csv"));

    /// <summary>Whether this process ignores <paramref name="signal"/> (Linux: the SigIgn mask of /proc/self/status).</summary>
    static bool IgnoredHere(int signal)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return false;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) >> (signal - 1) & 1) != 0;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [Theory]
    [InlineData("SIGINT", 2)]
    [InlineData("SIGTERM", 15)]
    public async Task A_signal_writes_a_checkpoint_and_exits_cleanly_and_the_run_resumes_exactly(string signal, int number)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;   // POSIX signals
        // Started with a signal ignored (nohup, a background job of a script), a process and its children keep it
        // ignored, as POSIX wants: nothing to test then.
        if (IgnoredHere(number)) return;
        var root = CliHarness.TempDir("signal");
        string interrupted = Path.Combine(root, "interrupted"), straight = Path.Combine(root, "straight");
        // A long schedule, so that the child is still training when the signal comes however busy the machine is;
        // the resumed and the straight run both stop after step 20 of it.
        const int steps = 400, compareAt = 20;
        string[] Args(string dir, params string[] extra) => CliHarness.QuickVit(dir, "tetrajet", steps, ["--eval-every", "5", .. extra]);
        string[] Until20(string dir, params string[] extra) => Args(dir, ["--stop-after", compareAt.ToString(), .. extra]);

        // The CLI in its own process, as a user starts it; stdout says when steps are under way.
        var cli = Path.Combine(AppContext.BaseDirectory, "TetraJet.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli }.Concat(Args(interrupted)).Where(a => a != "--quiet").Append("--log-every").Append("1")) start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        var stderrTask = child.StandardError.ReadToEndAsync();
        var output = new List<string>();
        string? line;
        while ((line = child.StandardOutput.ReadLine()) is not null)
        {
            output.Add(line);
            if (line.StartsWith("step 3/", StringComparison.Ordinal)) break;
        }
        if (line is null) Assert.Fail("the run ended before its third step: " + string.Join(" | ", output) + await stderrTask);

        // While it runs, the folder is taken: a second run (fresh or --resume) is refused and changes nothing.
        AssertOneErrorLine(CliHarness.Run(Args(interrupted, "--resume")), "in use by another");

        Assert.Equal(0, Kill(child.Id, number));
        output.AddRange(child.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(child.WaitForExit(60_000));
        Assert.Equal(128 + number, child.ExitCode);
        Assert.Equal("", await stderrTask);   // no stack trace, no error
        var stopped = output.Single(l => l.StartsWith(signal + ": stopped after step", StringComparison.Ordinal));

        var ckpt = Checkpoint.Read(Path.Combine(interrupted, Checkpoint.FileName));
        Assert.InRange(ckpt.Header.Step, 3, compareAt - 1);
        Assert.Contains($"step {ckpt.Header.Step} of {steps}", stopped);
        Assert.Equal(ckpt.Header.Step, Metrics(interrupted)[^1].Step);
        Assert.False(File.Exists(Path.Combine(interrupted, RunLock.FileName)));

        var resumed = CliHarness.Run(Until20(interrupted, "--resume"));
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Equal(0, CliHarness.Run(Until20(straight)).Code);
        Assert.Equal(compareAt, Metrics(interrupted).Count);
        Assert.Equal(Numbers(straight), Numbers(interrupted));
        Assert.Equal(Scalars(straight), Scalars(interrupted));
        Assert.Equal(Oscillation(straight), Oscillation(interrupted));
        Assert.True(Checkpoint.Read(Path.Combine(straight, Checkpoint.FileName)).ModelState
            .AsSpan().SequenceEqual(Checkpoint.Read(Path.Combine(interrupted, Checkpoint.FileName)).ModelState), "weights differ");
    }

    [Fact]
    public void Resume_after_a_kill_continues_metrics_oscillation_windows_and_events_exactly()
    {
        var root = CliHarness.TempDir("windows");
        string split = Path.Combine(root, "split"), straight = Path.Combine(root, "straight");
        // Checkpoints at steps 3, 6, 9, 12; oscillation reports at 5, 10 and 12: the checkpoint at 3 is mid-window.
        string[] Args(string dir, params string[] extra) => CliHarness.QuickVit(dir, "tetrajet", 12, ["--eval-every", "5", "--checkpoint-every", "3", .. extra]);
        Assert.Equal(0, CliHarness.Run(Args(straight)).Code);
        Assert.Equal(0, CliHarness.Run(Args(split, "--stop-after", "3")).Code);

        // A kill after step 4 had been logged but before its checkpoint: a metrics row and an event past the
        // checkpoint, a torn last line and a cut-off event record; and a second event file repeating step 2 and
        // logging step 5, as a crash while the event files were being merged leaves behind.
        var metricsPath = Path.Combine(split, MetricsCsv.FileName);
        var rows = File.ReadAllLines(metricsPath);
        File.AppendAllText(metricsPath, "4" + rows[^1][1..] + "\n" + "5,0.1");
        var first = Directory.GetFiles(split, TfEventsWriter.Prefix + "*").Single();
        using (var log = TfEventsWriter.Continue(split, long.MaxValue)) log.Scalar("train/loss", 456, 4);
        File.AppendAllBytes(first, [0x30, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        using (var extra = TfEventsWriter.Create(split))
        {
            extra.Scalar("train/loss", Metrics(straight)[1].Loss, 2);
            extra.Scalar("train/loss", 789, 5);
        }
        Assert.Equal(2, Directory.GetFiles(split, TfEventsWriter.Prefix + "*").Length);

        var r = CliHarness.Run(Args(split, "--resume"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(Numbers(straight), Numbers(split));
        var events = Scalars(split);
        Assert.Equal(Scalars(straight), events);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), events.Where(s => s.Tag == "train/loss").Select(s => s.Step));
        Assert.Equal(Oscillation(straight), Oscillation(split));
        Assert.Contains("\n5,4,", Oscillation(split));   // the first window: steps 2–5 against the weights after step 1
    }

    [Fact]
    public void A_run_that_stopped_before_its_first_checkpoint_starts_over_with_resume()
    {
        var dir = Path.Combine(CliHarness.TempDir("nockpt"), "run");
        // Diverges at once, before the checkpoint of step 100: the folder holds metrics and events, no checkpoint.
        var failed = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 6, "--lr", "1e30", "--clip", "0", "--weight-decay", "0", "--checkpoint-every", "100"));
        Assert.Equal(1, failed.Code);
        Assert.Contains("No checkpoint was written yet", failed.Err);
        Assert.False(File.Exists(Path.Combine(dir, Checkpoint.FileName)));
        Assert.True(File.Exists(Path.Combine(dir, MetricsCsv.FileName)));

        var before = CliHarness.Snapshot(dir);
        AssertOneErrorLine(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 6)), "--resume to start it over");
        CliHarness.AssertUnchanged(before, dir);

        var r = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 6, "--resume"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("starting over", r.Out);
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), Metrics(dir).Select(m => m.Step));
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), Scalars(dir).Where(s => s.Tag == "train/loss").Select(s => s.Step));
        Assert.Equal(6, Checkpoint.Read(Path.Combine(dir, Checkpoint.FileName)).Header.Step);
    }

    [Fact]
    public void A_folder_held_by_another_run_is_refused_untouched()
    {
        var dir = Path.Combine(CliHarness.TempDir("locked"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--stop-after", "2")).Code);
        var before = CliHarness.Snapshot(dir);
        using (RunLock.Acquire(dir))
        {
            AssertOneErrorLine(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume")), "in use by another");
            AssertOneErrorLine(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4)), "in use by another");
        }
        CliHarness.AssertUnchanged(before, dir);
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume")).Code);
    }

    [Theory]
    [InlineData("2,not-a-number,0,0,,,,,1,1")]
    [InlineData("garbage without commas")]
    public void A_damaged_metrics_csv_is_one_error_line(string damage)
    {
        var dir = Path.Combine(CliHarness.TempDir("damaged"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--stop-after", "3")).Code);
        var path = Path.Combine(dir, MetricsCsv.FileName);
        var lines = File.ReadAllLines(path);
        lines[2] = damage;
        File.WriteAllLines(path, lines);
        var before = CliHarness.Snapshot(dir);
        AssertOneErrorLine(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume")), "metrics.csv line 3 is damaged");
        CliHarness.AssertUnchanged(before, dir);
        AssertOneErrorLine(CliHarness.Run("compare", dir, "--out", Path.Combine(CliHarness.TempDir("cmp"), "c.png")), "line 3 is damaged");
    }
}
