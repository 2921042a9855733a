using Spectre.Console;

namespace TetraJet.Cli;

/// <summary>Where the trainer reports progress: a live Spectre.Console bar on a terminal, plain lines otherwise.</summary>
public abstract class ProgressView
{
    public abstract void Update(long step, long total, string status, TimeSpan? eta);
    public abstract void Line(string text);

    /// <summary>Runs <paramref name="body"/> with the view that suits <paramref name="stdout"/>.</summary>
    public static T Run<T>(TextWriter stdout, bool quiet, int logEvery, long startStep, long total, string title, Func<ProgressView, T> body)
    {
        if (quiet) return body(new Plain(TextWriter.Null, int.MaxValue));
        bool live = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (!live) return body(new Plain(stdout, Math.Max(1, logEvery)));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: total);
                task.Value = startStep;
                result = body(new Live(task));
            });
        return result;
    }

    sealed class Plain(TextWriter o, int every) : ProgressView
    {
        public override void Update(long step, long total, string status, TimeSpan? eta)
        {
            if (step % every != 0 && step != total) return;
            o.WriteLine($"step {step}/{total}  {status}" + (eta is TimeSpan t ? $"  eta {Eta(t)}" : ""));
            o.Flush();
        }

        public override void Line(string text) { o.WriteLine(text); o.Flush(); }
    }

    sealed class Live(ProgressTask task) : ProgressView
    {
        public override void Update(long step, long total, string status, TimeSpan? eta)
        {
            task.Value = step;
            task.Description = Markup.Escape(status);
        }

        public override void Line(string text) => AnsiConsole.WriteLine(text);
    }

    public static string Eta(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";
}
