using System.Globalization;

namespace TetraJet.Cli;

/// <summary>
/// One row of metrics.csv: a training step, plus evaluation numbers on the steps that evaluated and the gradient-to-noise
/// ratio's minimum and median over the quantized layers on the steps that sampled it (docs/DIAGNOSTICS.md).
/// </summary>
public sealed record MetricsRow(long Step, double Epoch, double Loss, double Lr, double? TrainAcc,
    double? EvalLoss, double? EvalAcc, double? EvalPpl, double ItemsPerSecond, double ElapsedSeconds,
    double? NoiseMin = null, double? NoiseMedian = null);

/// <summary>metrics.csv: written a row per step, read back for plots, resume and compare.</summary>
public static class MetricsCsv
{
    public const string FileName = "metrics.csv";
    public const string Header = "step,epoch,loss,lr,train_acc,eval_loss,eval_acc,eval_ppl,items_per_s,elapsed_s,noise_min,noise_median";
    /// <summary>The header before the noise columns: such files are still read, and a resumed run rewrites them with both columns empty.</summary>
    public const string LegacyHeader = "step,epoch,loss,lr,train_acc,eval_loss,eval_acc,eval_ppl,items_per_s,elapsed_s";
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    static string F(double v) => v.ToString("R", Inv);
    static string F(double? v) => v is double d ? F(d) : "";

    public static string Format(MetricsRow r) =>
        $"{r.Step},{r.Epoch.ToString("0.####", Inv)},{F(r.Loss)},{F(r.Lr)},{F(r.TrainAcc)},{F(r.EvalLoss)},{F(r.EvalAcc)},{F(r.EvalPpl)},{r.ItemsPerSecond.ToString("0.#", Inv)},{r.ElapsedSeconds.ToString("0.###", Inv)},{F(r.NoiseMin)},{F(r.NoiseMedian)}";

    /// <summary>Reads every row; a damaged file is a <see cref="UsageException"/> naming the line.</summary>
    public static List<MetricsRow> Read(string path) => RunCsv.ReadLines(path, HeaderOf(path), "tetrajet train").Select(l => Parse(path, l.Number, l.Text)).ToList();

    /// <summary>The file's header where it is the legacy one, else the current one (which ReadLines then checks).</summary>
    static string HeaderOf(string path)
    {
        try
        {
            using var reader = new StreamReader(path);
            return reader.ReadLine()?.TrimEnd('\r') == LegacyHeader ? LegacyHeader : Header;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"cannot read {path}: {e.Message}"); }
    }

    /// <summary>
    /// The lines to keep when a run resumes at <paramref name="step"/>: the header and the rows up to it. A last line
    /// cut off by a kill is dropped; a damaged complete row is an error (it is the run's history, not a torn write).
    /// </summary>
    public static List<string> KeepThrough(string path, long step)
    {
        var keep = new List<string> { Header };
        foreach (var (number, text) in RunCsv.ReadLines(path, HeaderOf(path), "tetrajet train"))
        {
            var row = Parse(path, number, text);
            if (row.Step <= step) keep.Add(Format(row));
        }
        return keep;
    }

    static MetricsRow Parse(string path, int number, string line)
    {
        var f = line.Split(',');
        UsageException Bad() => new($"{path} line {number} is damaged ('{RunCsv.Shorten(line)}'); repair or delete that line, or move the file away");
        if (f.Length is not (10 or 12)) throw Bad();
        static bool D(string s, out double v) => double.TryParse(s, NumberStyles.Float, Inv, out v);
        static bool N(string s, out double? v)
        {
            v = null;
            if (s.Length == 0) return true;
            if (!D(s, out var d)) return false;
            v = d;
            return true;
        }
        if (!long.TryParse(f[0], NumberStyles.None, Inv, out long step) || !D(f[1], out var epoch) || !D(f[2], out var loss) || !D(f[3], out var lr)
            || !N(f[4], out var trainAcc) || !N(f[5], out var evalLoss) || !N(f[6], out var evalAcc) || !N(f[7], out var evalPpl)
            || !D(f[8], out var items) || !D(f[9], out var elapsed))
            throw Bad();
        double? noiseMin = null, noiseMedian = null;
        if (f.Length == 12 && (!N(f[10], out noiseMin) || !N(f[11], out noiseMedian))) throw Bad();
        return new MetricsRow(step, epoch, loss, lr, trainAcc, evalLoss, evalAcc, evalPpl, items, elapsed, noiseMin, noiseMedian);
    }
}

/// <summary>The CSV files of a run folder (metrics.csv, oscillation.csv): a fixed header, then one line per row.</summary>
public static class RunCsv
{
    /// <summary>
    /// The complete data lines (ending in a newline) with their 1-based line numbers; an unfinished last line, which
    /// only a killed writer leaves, is left out. The first line must be <paramref name="header"/>.
    /// </summary>
    public static List<(int Number, string Text)> ReadLines(string path, string header, string writer)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"cannot read {path}: {e.Message}"); }
        var lines = text.Split('\n');
        // Split leaves the text after the last newline as the final element: empty when the file ends in one.
        int complete = lines.Length - 1;
        if (complete < 1 || lines[0].TrimEnd('\r') != header) throw new UsageException($"{path} is not a {Path.GetFileName(path)} written by '{writer}' (its first line is not the header)");
        var result = new List<(int, string)>();
        for (int i = 1; i < complete; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Length > 0) result.Add((i + 1, line));
        }
        return result;
    }

    /// <summary>Keeps the header and the rows whose first field, a step, is at most <paramref name="step"/>.</summary>
    public static List<string> KeepThrough(string path, string header, string writer, long step)
    {
        var keep = new List<string> { header };
        foreach (var (number, line) in ReadLines(path, header, writer))
        {
            int comma = line.IndexOf(',');
            if (comma <= 0 || !long.TryParse(line.AsSpan(0, comma), NumberStyles.None, CultureInfo.InvariantCulture, out long s))
                throw new UsageException($"{path} line {number} is damaged ('{Shorten(line)}'); repair or delete that line, or move the file away");
            if (s <= step) keep.Add(line);
        }
        return keep;
    }

    /// <summary>Replaces the file with <paramref name="lines"/> (temp file and rename).</summary>
    public static void Rewrite(string path, IEnumerable<string> lines)
    {
        var tmp = path + ".tmp";
        File.WriteAllLines(tmp, lines);
        File.Move(tmp, path, overwrite: true);
    }

    internal static string Shorten(string line) => line.Length <= 60 ? line : line[..57] + "...";
}
