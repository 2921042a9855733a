using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;

namespace TetraJet.Generators.Tests;

/// <summary>Generated code compiled with the real runtime, warnings as errors, then loaded and run.</summary>
public class CompilationTests
{
    [Fact]
    public void Generated_code_compiles_without_any_diagnostic()
    {
        var result = GeneratorHarness.Run(Sources.DesignMlp, Sources.MxOptions, Sources.MemberSizes, Sources.SharedConfig, Sources.LeanOsciReset);
        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Empty(result.AnalyzerDiagnostics);
        Assert.Equal(12, result.Run.GeneratedSources.Length);   // 5 models, 5 plans, the recipes, the registry
        Assert.Empty(result.Output.GetDiagnostics().Where(d => d.Severity > DiagnosticSeverity.Hidden));   // not even an info

        using var stream = new MemoryStream();
        var emit = result.Output.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
    }

    [Fact]
    public void Compiled_model_runs_and_registers_its_layers()
    {
        var result = GeneratorHarness.Run(Sources.DesignMlp);
        using var stream = new MemoryStream();
        Assert.True(result.Output.Emit(stream).Success);

        var context = new AssemblyLoadContext("generated", isCollectible: true);
        try
        {
            stream.Position = 0;
            var assembly = context.LoadFromStream(stream);
            var type = assembly.GetType("Demo.Mlp")!;
            using var model = (TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>)Activator.CreateInstance(type)!;
            Assert.Equal(new[] { "Up", "Down", "Head" }, model.named_children().Select(c => c.name));
            var up = (QLinear)type.GetProperty("Up")!.GetValue(model)!;
            Assert.Equal((512, 2048), (up.InFeatures, up.OutFeatures));
            Assert.Equal(Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true }, up.Recipe);
            using var y = model.call(TorchSharp.torch.ones(2, 512));
            Assert.Equal(new long[] { 2, 10 }, y.shape);
        }
        finally
        {
            context.Unload();
        }
    }
}
