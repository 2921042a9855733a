using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace TetraJet.Generators.Tests;

/// <summary>
/// The diagnostics behave like the platform's: <c>#pragma warning</c> and .editorconfig severities apply, each is
/// reported once, a TJ error is the only error, and each help link opens its section of docs/DSL.md.
/// </summary>
public class DiagnosticBehaviourTests
{
    private const string Usings = Sources.Usings;

    /// <summary>TJ1008 (QEma without effect) on the class and TJ1003 (100 is not a multiple of 128) on its layer.</summary>
    private const string TwoProblems = Usings + """
        namespace Demo;

        [Quantize(Format.NVFP4, QEma = true)]
        public sealed partial class M : nn.Module<Tensor, Tensor>
        {
            [Linear(100, 128)] public partial QLinear L { get; }
            public M() : base("M") { InitializeQuantization(); }
            public override Tensor forward(Tensor x) => x;
        }
        """;

    private static string[] Ids(IEnumerable<Diagnostic> diagnostics)
        => diagnostics.Where(d => d.Id.StartsWith("TJ", StringComparison.Ordinal)).Select(d => d.Id).OrderBy(i => i, StringComparer.Ordinal).ToArray();

    // ---- #pragma warning ----

    [Fact]
    public void Pragma_warning_disable_suppresses_a_TJ_warning_where_it_applies_only()
    {
        var source = Usings + """
            namespace Demo;

            #pragma warning disable TJ1008 // Q-EMA is kept on purpose for a later MXFP4 run
            [Quantize(Format.NVFP4, QEma = true)]
            #pragma warning restore TJ1008
            public sealed partial class Quiet : nn.Module<Tensor, Tensor>
            {
                [Linear(128, 128)] public partial QLinear L { get; }
                public Quiet() : base("Quiet") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => x;
            }

            [Quantize(Format.NVFP4, QEma = true)]
            public sealed partial class Loud : nn.Module<Tensor, Tensor>
            {
                [Linear(128, 128)] public partial QLinear L { get; }
                public Loud() : base("Loud") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => x;
            }
            """;
        var result = GeneratorHarness.Run(false, source);
        var reported = Assert.Single(result.AnalyzerDiagnostics);
        Assert.Equal("TJ1008", reported.Id);
        Assert.Equal(16, reported.Location.GetLineSpan().StartLinePosition.Line + 1);   // Loud's attribute, not Quiet's

        // Without the pragma, both are reported.
        var unsuppressed = GeneratorHarness.Run(false, source.Replace("#pragma warning disable TJ1008", "//"));
        Assert.Equal(new[] { "TJ1008", "TJ1008" }, Ids(unsuppressed.AnalyzerDiagnostics));
    }

    // ---- .editorconfig ----

    /// <summary>The analyzers over <paramref name="source"/> in a project with <paramref name="editorConfig"/> beside it, as an IDE or a build sees them.</summary>
    private static async Task<ImmutableArray<Diagnostic>> AnalyzeInProject(string source, string editorConfig)
    {
        using var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        var solution = workspace.CurrentSolution
            .AddProject(ProjectInfo.Create(
                projectId, VersionStamp.Default, "Tests", "Tests", LanguageNames.CSharp, filePath: "/src/Tests.csproj",
                compilationOptions: new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable),
                parseOptions: GeneratorHarness.ParseOptions, metadataReferences: GeneratorHarness.References))
            .AddDocument(DocumentId.CreateNewId(projectId), "Model.cs", SourceText.From(source), filePath: "/src/Model.cs")
            .AddAnalyzerConfigDocument(DocumentId.CreateNewId(projectId), ".editorconfig", SourceText.From(editorConfig), filePath: "/src/.editorconfig");
        var compilation = await solution.GetProject(projectId)!.GetCompilationAsync();
        return GeneratorHarness.Analyze(compilation!);
    }

    [Fact]
    public async Task Editorconfig_severities_apply()
    {
        static (string, DiagnosticSeverity)[] Seen(ImmutableArray<Diagnostic> diagnostics)
            => diagnostics.Select(d => (d.Id, d.Severity)).OrderBy(p => p.Id, StringComparer.Ordinal).ToArray();

        Assert.Equal(
            new[] { ("TJ1003", DiagnosticSeverity.Error), ("TJ1008", DiagnosticSeverity.Warning) },
            Seen(await AnalyzeInProject(TwoProblems, "root = true\n")));
        Assert.Equal(
            new[] { ("TJ1003", DiagnosticSeverity.Error) },
            Seen(await AnalyzeInProject(TwoProblems, "root = true\n\n[*.cs]\ndotnet_diagnostic.TJ1008.severity = none\n")));
        Assert.Equal(
            new[] { ("TJ1003", DiagnosticSeverity.Warning), ("TJ1008", DiagnosticSeverity.Error) },
            Seen(await AnalyzeInProject(TwoProblems, "root = true\n\n[*.cs]\ndotnet_diagnostic.TJ1008.severity = error\ndotnet_diagnostic.TJ1003.severity = warning\n")));
        // A section for other files leaves these alone.
        Assert.Equal(
            new[] { ("TJ1003", DiagnosticSeverity.Error), ("TJ1008", DiagnosticSeverity.Warning) },
            Seen(await AnalyzeInProject(TwoProblems, "root = true\n\n[*.vb]\ndotnet_diagnostic.TJ1008.severity = none\n")));
    }

    // ---- Once each ----

    [Fact]
    public void A_class_level_problem_is_reported_once_however_many_layers_inherit_it()
    {
        var result = GeneratorHarness.Run(false, Usings + """
            [Quantize(Recipe.TetraJetV2, QEma = true), QuantizeSlot(Slot.Q4, Format.BF16)]
            public sealed partial class M : nn.Module<Tensor, Tensor>
            {
                [Linear(128, 128)] public partial QLinear A { get; }
                [Linear(128, 128)] public partial QLinear B { get; }
                public M() : base("M") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => x;
            }
            """, Usings + """
            public sealed partial class M
            {
                [Linear(128, 256)] public partial QLinear C { get; }
                [Linear(128, 256), QuantizeSlot(Slot.Q3, Format.BF16)] public partial QLinear D { get; }   // Q3 and Q4 both BF16: fine
            }
            """);
        Assert.Equal(new[] { "TJ1008", "TJ1016" }, Ids(result.AnalyzerDiagnostics));
        Assert.Empty(result.GeneratorDiagnostics);
    }

    // ---- A TJ error comes alone ----

    public static TheoryData<string, string> ErrorSources => new()
    {
        { "TJ1002", "public sealed partial class M { [Linear(32, 32)] public partial QLinear L { get; } public M() { InitializeQuantization(); } }" },
        { "TJ1003", "[Quantize(Format.MXFP4)] public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 48)] public partial QLinear L { get; } [Linear(32, 32)] public partial QLinear Ok { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1004", "public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 0)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1005", "[Quantize(Format.MXFP4, QEma = true, EmaDecay = 1.5)] public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1010", "public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(\"Missing\", 32)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(new Recipe { Name = \"x\", Q1 = QuantizerSlot.None, Q2 = QuantizerSlot.None, Q3 = QuantizerSlot.None, Q4 = QuantizerSlot.None, Q5 = QuantizerSlot.None, Q6 = QuantizerSlot.None }); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1015", "[Quantize(Format.MXFP8)] public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1016", "[Quantize(Recipe.TetraJetV2), QuantizeSlot(Slot.Q4, Format.BF16)] public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(128, 128)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1018", "[Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q2, Format.MXFP4, Rounding = Rounding.EmaGuided)] public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1019", "public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32), QuantizeSlot(Slot.Q1, Format.MXFP4), QuantizeSlot(Slot.Q1, Format.MXFP8)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
        { "TJ1021", "public sealed partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32), QuantizeSlot(Slot.Q2, Format.MXFP4, Hadamard = true)] public partial QLinear L { get; } public M() : base(\"M\") { InitializeQuantization(); } public override Tensor forward(Tensor x) => L.call(x); }" },
    };

    /// <summary>
    /// What a build with warnings as errors shows is the TJ error and nothing else: the generated part of a layer that
    /// cannot be built declares no holder field (no CS0649), and a type that is not a module still gets its properties
    /// and InitializeQuantization (no CS9248, no CS0103).
    /// </summary>
    [Theory]
    [MemberData(nameof(ErrorSources))]
    public void A_TJ_error_is_the_only_diagnostic_of_the_build(string id, string body)
    {
        var result = GeneratorHarness.Run(Usings + body);
        Assert.Equal(new[] { id }, result.AllDiagnostics.Select(d => d.Id));
        Assert.DoesNotContain(result.Output.GetDiagnostics(), d => d.Id == "CS0649");
    }

    [Fact]
    public void A_layer_that_cannot_be_built_throws_when_read_if_its_error_was_suppressed()
    {
        var result = GeneratorHarness.Run(Usings + """
            public sealed partial class M : nn.Module<Tensor, Tensor>
            {
                [Linear(32, 32), QuantizeSlot(Slot.Q1, Format.MXFP4), QuantizeSlot(Slot.Q1, Format.MXFP8)] public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => L.call(x);
            }
            """);
        var source = result.Source("M.TetraJet.g.cs");
        Assert.Contains("get => throw new global::System.InvalidOperationException(\"M.L was not created: its [Linear], [Quantize] or [QuantizeSlot] has errors (TJ diagnostics).\");", source);
        Assert.DoesNotContain("public global::TetraJet.QLinear? L;", source);
    }

    // ---- Help links ----

    private static string RepositoryFile(string relative, [CallerFilePath] string here = "")
        => File.ReadAllText(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", relative));

    /// <summary>GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static string Anchor(string heading)
        => Regex.Replace(heading.Trim().ToLowerInvariant(), @"[^\p{L}\p{Nd}\- ]", "").Replace(' ', '-');

    [Fact]
    public void Every_diagnostic_links_to_its_own_section_of_the_DSL_docs()
    {
        var descriptors = GeneratorHarness.Analyzers.SelectMany(a => a.SupportedDiagnostics).ToList();
        var docs = RepositoryFile("docs/DSL.md").Replace("\r\n", "\n");
        var sections = Regex.Matches(docs, @"^### (.+)$", RegexOptions.Multiline)
            .Where(m => m.Groups[1].Value.StartsWith("TJ", StringComparison.Ordinal))
            .ToDictionary(m => Anchor(m.Groups[1].Value), m => m.Index);
        Assert.Equal(descriptors.Select(d => d.Id.ToLowerInvariant()).OrderBy(i => i), sections.Keys.OrderBy(k => k));   // one each, no others

        var releases = RepositoryFile("TetraJet.Generators/AnalyzerReleases.Unshipped.md");
        foreach (var descriptor in descriptors)
        {
            var anchor = descriptor.Id.ToLowerInvariant();
            Assert.Equal("https://github.com/tetrajet/TetraJet.NET/blob/main/docs/DSL.md#" + anchor, descriptor.HelpLinkUri);
            var start = sections[anchor];
            var ends = new[] { docs.IndexOf("\n### ", start + 1, StringComparison.Ordinal), docs.IndexOf("\n## ", start + 1, StringComparison.Ordinal) }.Where(i => i > 0);
            var section = docs[start..(ends.Any() ? ends.Min() : docs.Length)];
            Assert.Contains("**" + descriptor.Title + "**", section);           // what it is
            Assert.Contains("Fix:", section);                                   // how to fix it
            Assert.Contains("```csharp", section);                             // an example
            Assert.Contains(descriptor.DefaultSeverity == DiagnosticSeverity.Error ? "(error)" : "(warning)", section);
            Assert.Contains($"{descriptor.Id} | {descriptor.Category} | {descriptor.DefaultSeverity} | {descriptor.Title}", releases);
        }
    }
}
