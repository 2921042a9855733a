using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace TetraJet.Generators.Tests;

/// <summary>Edits that do not touch the DSL leave every tracked pipeline step cached.</summary>
public class IncrementalTests
{
    private const string Unrelated = """
        namespace Demo;

        public static class Helpers
        {
            public static int Twice(int x) => 2 * x;
        }
        """;

    private static readonly string[] Tracked =
    {
        TrackingNames.LinearProperties, TrackingNames.Models, TrackingNames.Model, TrackingNames.LinearConfigs,
    };

    private static (GeneratorDriver Driver, Compilation Compilation) FirstRun()
    {
        var compilation = GeneratorHarness.Compilation(Sources.DesignMlp, Unrelated);
        var driver = GeneratorHarness.Driver(track: true).RunGenerators(compilation);
        return (driver, compilation);
    }

    private static IEnumerable<(string Step, IncrementalStepRunReason Reason)> Reasons(GeneratorDriver driver)
    {
        var steps = driver.GetRunResult().Results.Single().TrackedSteps;
        foreach (var name in Tracked)
        {
            Assert.True(steps.ContainsKey(name), $"step {name} was not tracked");
            foreach (var run in steps[name])
            {
                foreach (var output in run.Outputs) yield return (name, output.Reason);
            }
        }
    }

    [Fact]
    public void An_edit_to_an_unrelated_file_leaves_every_step_cached()
    {
        var (driver, compilation) = FirstRun();
        var tree = compilation.SyntaxTrees.Single(t => t.FilePath == "Model1.cs");
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(
            Unrelated.Replace("2 * x", "x + x"), GeneratorHarness.ParseOptions, path: "Model1.cs"));

        driver = driver.RunGenerators(edited);

        var reasons = Reasons(driver).ToList();
        Assert.Contains(reasons, r => r.Step == TrackingNames.LinearProperties);
        Assert.Contains(reasons, r => r.Step == TrackingNames.Model);
        Assert.All(reasons, r => Assert.True(
            r.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{r.Step} was {r.Reason}"));
    }

    [Fact]
    public void Adding_an_unrelated_file_leaves_every_step_cached()
    {
        var (driver, compilation) = FirstRun();
        driver = driver.RunGenerators(compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
            "namespace Demo; public sealed class Extra { }", GeneratorHarness.ParseOptions, path: "Extra.cs")));

        Assert.All(Reasons(driver), r => Assert.True(
            r.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{r.Step} was {r.Reason}"));
    }

    [Fact]
    public void Changing_a_layer_size_reruns_the_model_but_keeps_the_configurations()
    {
        var (driver, compilation) = FirstRun();
        var tree = compilation.SyntaxTrees.Single(t => t.FilePath == "Model.cs");
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(
            Sources.DesignMlp.Replace("[Linear(512, 10)", "[Linear(512, 12)"), GeneratorHarness.ParseOptions, path: "Model.cs"));

        driver = driver.RunGenerators(edited);

        var reasons = Reasons(driver).ToList();
        Assert.Contains(reasons, r => r.Step == TrackingNames.Model && r.Reason == IncrementalStepRunReason.Modified);
        Assert.All(reasons.Where(r => r.Step == TrackingNames.LinearConfigs), r => Assert.True(
            r.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{r.Step} was {r.Reason}"));
        Assert.Contains("512, 12,", driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName == "Demo.Mlp.TetraJet.g.cs").SourceText.ToString());
    }

    public static TheoryData<string, string, string> TriviaEdits => new()
    {
        { "a comment above a layer", "    [Linear(2048, 512)]", "    // The projection back to the model width.\n    [Linear(2048, 512)]" },
        { "a doc comment on the class", "[Quantize(Recipe.TetraJetV2", "/// <summary>An MLP.</summary>\n[Quantize(Recipe.TetraJetV2" },
        { "blank lines and indentation", "    [Linear(512, 2048)] public", "\n\n        [Linear( 512,  2048 )]   public" },
    };

    /// <summary>
    /// An edit to the model's own file that changes no model: the property step runs again (its file changed) and yields
    /// equal specs, so everything after it stays cached. Specs hold no source positions for this reason.
    /// </summary>
    [Theory]
    [MemberData(nameof(TriviaEdits))]
    public void A_trivia_edit_to_the_model_file_leaves_the_model_unchanged(string what, string find, string replace)
    {
        var (driver, compilation) = FirstRun();
        var before = driver.GetRunResult().Results.Single().GeneratedSources.Select(s => s.SourceText.ToString()).ToList();
        var tree = compilation.SyntaxTrees.Single(t => t.FilePath == "Model.cs");
        Assert.Contains(find, Sources.DesignMlp);
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(
            Sources.DesignMlp.Replace(find, replace), GeneratorHarness.ParseOptions, path: "Model.cs"));

        driver = driver.RunGenerators(edited);

        var reasons = Reasons(driver).ToList();
        Assert.Contains(reasons, r => r.Step == TrackingNames.LinearProperties && r.Reason == IncrementalStepRunReason.Unchanged);
        Assert.All(reasons, r => Assert.True(
            r.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{what}: {r.Step} was {r.Reason}"));
        var after = driver.GetRunResult().Results.Single().GeneratedSources.Select(s => s.SourceText.ToString()).ToList();
        Assert.Equal(before, after);
    }
}
