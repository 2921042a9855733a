using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace TetraJet.Generators.Tests;

/// <summary>The "Make partial" fix for TJ1001, applied through a workspace.</summary>
public class CodeFixTests
{
    private static async Task<string> ApplyFixAsync(string source)
    {
        var diagnostic = GeneratorHarness.Run(source).AnalyzerDiagnostics.First(d => d.Id == "TJ1001");

        using var workspace = new AdhocWorkspace();
        var project = workspace.AddProject(ProjectInfo.Create(
            ProjectId.CreateNewId(), VersionStamp.Default, "Tests", "Tests", LanguageNames.CSharp,
            parseOptions: GeneratorHarness.ParseOptions, metadataReferences: GeneratorHarness.References));
        var document = workspace.AddDocument(project.Id, "Model.cs", SourceText.From(source));

        var actions = new List<CodeAction>();
        var fix = new MakePartialCodeFix();
        Assert.Equal(new[] { "TJ1001" }, fix.FixableDiagnosticIds);
        await fix.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None));
        var action = Assert.Single(actions);
        Assert.Equal("Make partial", action.Title);

        var operations = await action.GetOperationsAsync(CancellationToken.None);
        var apply = Assert.Single(operations.OfType<ApplyChangesOperation>());
        var changed = apply.ChangedSolution.GetDocument(document.Id)!;
        return (await changed.GetTextAsync()).ToString();
    }

    [Fact]
    public async Task Adds_partial_after_the_other_modifiers()
    {
        var source = Sources.Usings + """
            namespace Demo;

            /// <summary>A model.</summary>
            public sealed class Mlp : nn.Module<Tensor, Tensor>
            {
                [Linear(32, 32)] public partial QLinear Up { get; }
                public Mlp() : base("Mlp") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => Up.call(x);
            }
            """;
        var fixedSource = await ApplyFixAsync(source);
        Assert.Equal(source.Replace("public sealed class Mlp", "public sealed partial class Mlp"), fixedSource);

        // The fixed source has no TJ1001 any more, and compiles with the generated part.
        var result = GeneratorHarness.Run(fixedSource);
        Assert.Empty(result.AllDiagnostics);
    }

    [Fact]
    public async Task Adds_partial_to_a_declaration_without_modifiers_keeping_its_comment()
    {
        var source = Sources.Usings + """
            // A model without modifiers.
            class Mlp : nn.Module<Tensor, Tensor>
            {
                [Linear(32, 32)] public partial QLinear Up { get; }
                public Mlp() : base("Mlp") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => Up.call(x);
            }
            """;
        var fixedSource = await ApplyFixAsync(source);
        Assert.Equal(source.Replace("\nclass Mlp", "\npartial class Mlp"), fixedSource);
    }

    [Fact]
    public async Task Adds_partial_to_the_containing_type_that_TJ1001_names()
    {
        var source = Sources.Usings + """
            public static class Zoo
            {
                public sealed partial class Mlp : nn.Module<Tensor, Tensor>
                {
                    [Linear(32, 32)] public partial QLinear Up { get; }
                    public Mlp() : base("Mlp") { InitializeQuantization(); }
                    public override Tensor forward(Tensor x) => Up.call(x);
                }
            }
            """;
        var fixedSource = await ApplyFixAsync(source);
        Assert.Equal(source.Replace("public static class Zoo", "public static partial class Zoo"), fixedSource);
        Assert.Empty(GeneratorHarness.Run(fixedSource).AllDiagnostics);
    }
}
