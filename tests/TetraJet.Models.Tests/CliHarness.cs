using TetraJet.Cli;

namespace TetraJet.Models.Tests;

/// <summary>Runs the CLI in-process and captures its output; gives each test its own scratch folder.</summary>
static class CliHarness
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>This test process's scratch root, removed when the process exits.</summary>
    public static readonly string Root = Path.Combine(Path.GetTempPath(), $"tetrajet-tests-{Environment.ProcessId}");

    static CliHarness() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    };

    public static string TempDir(string name)
    {
        var dir = Path.Combine(Root, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A quick ViT run on a small slice of the shipped data.</summary>
    public static string[] QuickVit(string outDir, string recipe = "tetrajet", int steps = 6, params string[] extra) =>
    [
        "train", "vit", "--recipe", recipe, "--steps", steps.ToString(), "--batch", "32", "--train-subset", "512",
        "--eval-subset", "128", "--out", outDir, "--quiet", .. extra,
    ];

    /// <summary>Every file under a folder with its bytes, to check that nothing changed.</summary>
    public static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes)
            : [];

    public static void AssertUnchanged(Dictionary<string, byte[]> before, string dir)
    {
        var after = Snapshot(dir);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (k, v) in before) Assert.True(v.AsSpan().SequenceEqual(after[k]), $"{k} changed");
    }
}
