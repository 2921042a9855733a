using System.Globalization;

namespace TetraJet.Cli;

/// <summary>One row of metrics.csv: a training step, plus evaluation numbers on the steps that evaluated.</summary>
public sealed record MetricsRow(long Step, double Epoch, double Loss, double Lr, double? TrainAcc,
    double? EvalLoss, double? EvalAcc, double? EvalPpl, double ItemsPerSecond, double ElapsedSeconds);

/// <summary>metrics.csv: written a row per step, read back for plots, resume and compare.</summary>
public static class MetricsCsv
{
    public const string FileName = "metrics.csv";
    public const string Header = "step,epoch,loss,lr,train_acc,eval_loss,eval_acc,eval_ppl,items_per_s,elapsed_s";
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    static string F(double v) => v.ToString("R", Inv);
    static string F(double? v) => v is double d ? F(d) : "";

    public static string Format(MetricsRow r) =>
        $"{r.Step},{r.Epoch.ToString("0.####", Inv)},{F(r.Loss)},{F(r.Lr)},{F(r.TrainAcc)},{F(r.EvalLoss)},{F(r.EvalAcc)},{F(r.EvalPpl)},{r.ItemsPerSecond.ToString("0.#", Inv)},{r.ElapsedSeconds.ToString("0.###", Inv)}";

    public static List<MetricsRow> Read(string path)
    {
        var rows = new List<MetricsRow>();
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0] != Header) throw new UsageException($"{path} is not a metrics.csv written by 'tetrajet train'");
        static double? N(string s) => s.Length == 0 ? null : double.Parse(s, Inv);
        foreach (var line in lines.Skip(1))
        {
            if (line.Length == 0) continue;
            var f = line.Split(',');
            if (f.Length != 10) throw new UsageException($"{path}: malformed row '{line}'");
            rows.Add(new MetricsRow(long.Parse(f[0], Inv), double.Parse(f[1], Inv), double.Parse(f[2], Inv), double.Parse(f[3], Inv),
                N(f[4]), N(f[5]), N(f[6]), N(f[7]), double.Parse(f[8], Inv), double.Parse(f[9], Inv)));
        }
        return rows;
    }

    /// <summary>Keeps the header and the rows up to <paramref name="step"/> (resume drops rows past the checkpoint).</summary>
    public static void Truncate(string path, long step)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadAllLines(path).Where((l, i) => i == 0 || l.Length > 0 && long.Parse(l[..l.IndexOf(',')], Inv) <= step);
        var tmp = path + ".tmp";
        File.WriteAllLines(tmp, keep);
        File.Move(tmp, path, overwrite: true);
    }
}
