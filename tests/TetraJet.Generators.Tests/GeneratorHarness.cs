using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using TetraJet.Generators;

namespace TetraJet.Generators.Tests;

/// <summary>Runs the generator (and the analyzer) over in-memory sources compiled against the real runtime.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Preview);

    /// <summary>The .NET runtime, TorchSharp, ILGPU and TetraJet.Runtime, as the DSL's users compile against them (the package brings all three).</summary>
    public static readonly ImmutableArray<MetadataReference> References = BuildReferences();

    private static ImmutableArray<MetadataReference> BuildReferences()
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal)
                || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .ToList();
        paths.Add(typeof(QLinear).Assembly.Location);
        paths.Add(typeof(TorchSharp.torch).Assembly.Location);
        paths.Add(typeof(ILGPU.ArrayView<>).Assembly.Location);
        return paths.Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    }

    public static CSharpCompilation Compilation(params string[] sources) => Compilation(true, sources);

    public static CSharpCompilation Compilation(bool warningsAsErrors, params string[] sources) => CSharpCompilation.Create(
        "Tests",
        sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: i == 0 ? "Model.cs" : $"Model{i}.cs")),
        References,
        new CSharpCompilationOptions(
            OutputKind.DynamicallyLinkedLibrary,
            nullableContextOptions: NullableContextOptions.Enable,
            generalDiagnosticOption: warningsAsErrors ? ReportDiagnostic.Error : ReportDiagnostic.Default));   // as in the repository

    public static GeneratorDriver Driver(bool track = false) => CSharpGeneratorDriver.Create(
        new[] { new Generator().AsSourceGenerator() },
        parseOptions: ParseOptions,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));

    public sealed record Result(Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorRunResult Run)
    {
        private ImmutableArray<Diagnostic>? _analyzerDiagnostics;

        public string Source(string hintName) => Run.GeneratedSources.Single(s => s.HintName == hintName).SourceText.ToString();

        /// <summary>Compiler diagnostics of the output compilation (sources plus generated code), warnings included.</summary>
        public ImmutableArray<Diagnostic> CompilerDiagnostics
            => Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToImmutableArray();

        /// <summary>The TetraJet analyzers' diagnostics over the output compilation, as a build reports them.</summary>
        public ImmutableArray<Diagnostic> AnalyzerDiagnostics => _analyzerDiagnostics ??= Analyze(Output);

        /// <summary>Everything a build would show at warning level or above: compiler and analyzers.</summary>
        public ImmutableArray<Diagnostic> AllDiagnostics => CompilerDiagnostics.AddRange(AnalyzerDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    public static Result Run(params string[] sources) => Run(true, sources);

    public static Result Run(bool warningsAsErrors, params string[] sources)
    {
        var compilation = Compilation(warningsAsErrors, sources);
        var driver = Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return new Result(output, diagnostics, driver.GetRunResult().Results.Single());
    }

    /// <summary>The TetraJet analyzers.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> Analyzers { get; } = ImmutableArray.Create<DiagnosticAnalyzer>(new QuantizationAnalyzer(), new InitializationAnalyzer());

    /// <summary>Diagnostics of the analyzers over the sources plus the generated code.</summary>
    public static Task<ImmutableArray<Diagnostic>> AnalyzeAsync(params string[] sources) => Task.FromResult(Run(false, sources).AnalyzerDiagnostics);

    /// <summary>The analyzers' diagnostics over <paramref name="compilation"/>; an exception in an analyzer fails the test.</summary>
    public static ImmutableArray<Diagnostic> Analyze(Compilation compilation)
    {
        var exceptions = new List<Exception>();
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), (e, _, _) => { lock (exceptions) exceptions.Add(e); },
            concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        var diagnostics = compilation.WithAnalyzers(Analyzers, options).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        if (exceptions.Count > 0) throw new AggregateException("an analyzer threw", exceptions);
        return diagnostics;
    }
}
