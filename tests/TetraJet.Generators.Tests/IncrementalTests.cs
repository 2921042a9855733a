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
        TrackingNames.QuantizeTargets, TrackingNames.LinearProperties, TrackingNames.Models, TrackingNames.Model, TrackingNames.LinearConfigs,
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
}
