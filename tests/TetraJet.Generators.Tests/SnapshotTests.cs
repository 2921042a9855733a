namespace TetraJet.Generators.Tests;

/// <summary>The emitted source for representative configurations, compared with approved files.</summary>
public class SnapshotTests
{
    private static void VerifyAll(string name, params string[] sources) => Verify(name, _ => true, sources);

    /// <summary>The emitted files that <paramref name="include"/> names, against their approved snapshots.</summary>
    private static void Verify(string name, Func<string, bool> include, params string[] sources)
    {
        var result = GeneratorHarness.Run(sources);
        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Empty(result.AnalyzerDiagnostics);
        Assert.Empty(result.CompilerDiagnostics);
        var failures = new List<string>();
        foreach (var source in result.Run.GeneratedSources.Where(s => include(s.HintName)).OrderBy(s => s.HintName, StringComparer.Ordinal))
        {
            try { Approvals.Verify(source.SourceText.ToString(), name + "." + source.HintName.Replace(".g.cs", "")); }
            catch (Xunit.Sdk.XunitException e) { failures.Add(e.Message); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Design_model_with_class_recipe_and_bf16_head() => VerifyAll("DesignMlp", Sources.DesignMlp);

    [Fact]
    public void Mxfp4_options_microscaling_and_nvidia_recipes() => VerifyAll("MxOptions", Sources.MxOptions);

    [Fact]
    public void Lean_osci_reset_options() => VerifyAll("LeanOsciReset", Sources.LeanOsciReset);

    [Fact]
    public void Member_sizes_in_a_nested_generic_class() => VerifyAll("MemberSizes", Sources.MemberSizes);

    [Fact]
    public void Slot_overrides_class_wide_per_layer_and_over_an_NVIDIA_Q4() =>
        // The class also takes a run-time recipe, so every named recipe's plan is generated too: the other snapshots show those.
        Verify("SlotOverrides", hint => !hint.StartsWith("TetraJet.Plan.", StringComparison.Ordinal) || System.Text.RegularExpressions.Regex.IsMatch(hint, "_Q[1-6]"),
            Sources.SlotOverrides);

    [Fact]
    public void Two_models_with_one_configuration_share_its_types()
    {
        var result = GeneratorHarness.Run(Sources.DesignMlp, Sources.SharedConfig);
        Assert.Empty(result.CompilerDiagnostics);
        Assert.Equal(
            new[]
            {
                "Demo.Mlp.TetraJet.g.cs", "Demo.Tiny.TetraJet.g.cs", "TetraJet.Plan.Bf16.g.cs", "TetraJet.Plan.Nvfp4_TetraJetV2.g.cs",
                "TetraJet.Plans.g.cs", "TetraJet.Recipes.g.cs",
            },
            result.Run.GeneratedSources.Select(s => s.HintName).OrderBy(n => n, StringComparer.Ordinal));
        var recipes = result.Source("TetraJet.Recipes.g.cs");
        Assert.Equal(1, Count(recipes, "public static readonly global::TetraJet.Recipe Nvfp4_TetraJetV2_OsciReset "));
        Assert.Equal(1, Count(recipes, "public static readonly global::TetraJet.Recipe Bf16 "));
        Assert.Equal(2, Count(recipes, "public static readonly global::TetraJet.Recipe "));
        Assert.Equal(1, Count(result.Source("TetraJet.Plans.g.cs"), "Nvfp4_TetraJetV2Plan.Instance"));
    }

    private static int Count(string text, string what)
    {
        var count = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
