using System.Text.Json;
using System.Text.Json.Serialization;

namespace TetraJet.Cli.Study;

/// <summary>One cell of a grid: a name for the table and the <c>tetrajet train</c> flags that make it (recipe, options, slots).</summary>
public sealed record StudyCell(string Name, IReadOnlyList<string> Args);

/// <summary>
/// A gap-closure figure: (m_reference − m_candidate) / (m_reference − m_baseline), the fraction of the reference's
/// distance to the baseline that the candidate closes (the TetraJet-v2 paper's 51.3%, with perplexity; the same
/// formula holds for accuracy).
/// </summary>
public sealed record GapSpec(string Reference, string Candidate, string Baseline);

/// <summary>Cells ranked by the degradation they cause against a baseline cell (the per-quantizer ablation).</summary>
public sealed record RankingSpec(string Baseline, IReadOnlyList<string> Cells);

/// <summary>
/// A study grid: model × cell (recipe, options, slot overrides) × seed, with the flags every run shares, and the
/// gap-closure figures and ranking its table reports. Named grids are in <see cref="StudyGrids"/>; any other is a JSON
/// file of this shape.
/// </summary>
public sealed record StudyGrid
{
    public required string Name { get; init; }
    public string Description { get; init; } = "";
    /// <summary>vit or gpt.</summary>
    public required string Model { get; init; }
    public IReadOnlyList<long> Seeds { get; init; } = [0, 1, 2];
    /// <summary>Flags of every run (size, length, data, device…), before the cell's.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];
    public required IReadOnlyList<StudyCell> Cells { get; init; }
    public IReadOnlyList<GapSpec> Gaps { get; init; } = [];
    public RankingSpec? Ranking { get; init; }

    /// <summary>Perplexity for the GPT (lower is better), test accuracy in % for the ViT (higher is better).</summary>
    [JsonIgnore] public string Metric => Model == "gpt" ? "perplexity" : "accuracy";
    [JsonIgnore] public bool LowerIsBetter => Model == "gpt";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>A named grid, or the grid in a JSON file; checked for what would fail only later.</summary>
    public static StudyGrid Load(string nameOrPath)
    {
        StudyGrid? grid = StudyGrids.Find(nameOrPath);
        if (grid is null)
        {
            if (!File.Exists(nameOrPath))
                throw new UsageException($"--grid {nameOrPath}: neither a named grid ({string.Join(", ", StudyGrids.All.Select(g => g.Name))}) nor a file");
            try { grid = JsonSerializer.Deserialize<StudyGrid>(File.ReadAllText(nameOrPath), Json); }
            catch (JsonException e) { throw new UsageException($"--grid {nameOrPath}: not a grid file ({e.Message})"); }
            if (grid is null) throw new UsageException($"--grid {nameOrPath}: empty");
        }
        grid.Check();
        return grid;
    }

    void Check()
    {
        string where = $"grid {Name}";
        if (Model is not ("vit" or "gpt")) throw new UsageException($"{where}: model '{Model}'; use vit or gpt");
        if (Cells.Count == 0 || Seeds.Count == 0) throw new UsageException($"{where}: needs at least one cell and one seed");
        if (Seeds.Distinct().Count() != Seeds.Count) throw new UsageException($"{where}: a seed is listed twice");
        var slugs = new HashSet<string>();
        foreach (var c in Cells)
            if (c.Name.Contains(',') || c.Name.Length == 0) throw new UsageException($"{where}: cell name '{c.Name}' is empty or has a comma (the CSV files hold it)");
        foreach (var c in Cells)
            if (!slugs.Add(Slug(c.Name))) throw new UsageException($"{where}: two cells share the folder name '{Slug(c.Name)}' (cell '{c.Name}')");
        foreach (var a in Args.Concat(Cells.SelectMany(c => c.Args)))
            if (a is "--out" or "--seed" or "--resume")
                throw new UsageException($"{where}: {a} is the study's to set; remove it from the grid's flags");
        var names = Cells.Select(c => c.Name).ToHashSet();
        foreach (var g in Gaps)
            foreach (var n in new[] { g.Reference, g.Candidate, g.Baseline })
                if (!names.Contains(n)) throw new UsageException($"{where}: the gap figure names '{n}', which is not a cell");
        if (Ranking is { } r)
            foreach (var n in r.Cells.Append(r.Baseline))
                if (!names.Contains(n)) throw new UsageException($"{where}: the ranking names '{n}', which is not a cell");
    }

    /// <summary>The folder name of a cell: lower case, letters and digits, the rest as single dashes.</summary>
    public static string Slug(string name)
    {
        var chars = name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray();
        return string.Join("-", new string(chars).Split('-', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>The run folder of a cell and seed under <paramref name="root"/>.</summary>
    public static string RunDir(string root, StudyCell cell, long seed) => Path.Combine(root, Slug(cell.Name), $"seed{seed}");

    /// <summary>The <c>tetrajet train</c> arguments of one run.</summary>
    public string[] TrainArgs(StudyCell cell, long seed, string dir, bool resume) =>
        ["train", Model, .. Args, .. cell.Args, "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", dir, .. resume ? new[] { "--resume" } : []];
}
