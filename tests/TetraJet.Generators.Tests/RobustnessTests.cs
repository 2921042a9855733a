using Microsoft.CodeAnalysis;

namespace TetraJet.Generators.Tests;

/// <summary>Half-typed and wrong code: the generator reports what it can and never fails.</summary>
public class RobustnessTests
{
    public static TheoryData<string> BrokenSources => new()
    {
        // Missing arguments, wrong argument types, unknown enum values.
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(\"a\", 3)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32.5, 64)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(null, null)] public partial QLinear A { get; } }",
        "[Quantize] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[Quantize((Format)42)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[Quantize(Format.MXFP4, EmaDecay = \"x\", QEma = 3)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[Quantize(Format.MXFP4, Nope = 1)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[Quantize(Format.NVFP4, EmaDecay = double.NaN, OutlierFraction = double.PositiveInfinity)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(128, 128)] public partial QLinear A { get; } }",
        "[QuantizeSlot] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[QuantizeSlot(Slot.Q3)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[QuantizeSlot((Slot)0, Format.MXFP4)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[QuantizeSlot(Slot.Q3, (Format)9, Rounding = (Rounding)7, ScaleRule = (ScaleRule)5)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[QuantizeSlot(Slot.Q3, Format.MXFP4, Hadamard = 1, Rounding = \"x\")] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32), QuantizeSlot(Slot.Q4, Format.BF16), QuantizeSlot(Slot.Q4, Format.MXFP4)] public partial QLinear A { get; } }",
        "[Quantize(Format.MXFP8)] public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [QuantizeSlot(Slot.Q1, Format.MXFP4)] public partial QLinear A { get; } }",
        // Half-typed declarations.
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial UnknownType A { get; } }",
        "public partial class M : UnknownBase { [Linear(32, 32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } [Linear(32, 32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A => null!; }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear this[int i] { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] QLinear field; }",
        "public partial struct S { [Linear(32, 32)] public partial QLinear A { get; } }",
        "public partial interface I { [Linear(32, 32)] QLinear A { get; } }",
        "public partial record R { [Linear(32, 32)] public partial QLinear A { get; } }",
        "[Linear(32, 32)] public partial class M : nn.Module<Tensor, Tensor> { }",
        "public partial class M<T> : nn.Module<Tensor, Tensor> where T : struct { [Linear(nameof(T), 32)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(nameof(Missing), nameof(M))] public partial QLinear A { get; } }",
        "partial class Outer { partial class M : nn.Module<Tensor, Tensor> { [Linear(32, 32)] public partial QLinear A { get; } } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [Linear(int.MaxValue, int.MinValue)] public partial QLinear A { get; } }",
        "public partial class M : nn.Module<Tensor, Tensor> { [TetraJet.Linear(32, 32, bias: \"no\")] public partial QLinear A { get; } }",
    };

    [Theory]
    [MemberData(nameof(BrokenSources))]
    public void Generator_never_fails_on_broken_code(string body)
    {
        var result = GeneratorHarness.Run(Sources.Usings + body);

        Assert.Null(result.Run.Exception);
        Assert.Empty(result.GeneratorDiagnostics);
        _ = result.AnalyzerDiagnostics;   // the analyzers run over it too, and never throw (Analyze fails on an exception)
        Assert.DoesNotContain(result.Output.GetDiagnostics(), d => d.Id is "CS8784" or "CS8785");
        // Whatever was generated parses: the generator never emits half-written code.
        foreach (var source in result.Run.GeneratedSources)
        {
            Assert.DoesNotContain(source.SyntaxTree.GetDiagnostics(), d => d.Severity == DiagnosticSeverity.Error);
        }
    }

    [Fact]
    public void Broken_argument_skips_the_layer_but_still_implements_the_property()
    {
        var result = GeneratorHarness.Run(Sources.Usings + """
            public partial class M : nn.Module<Tensor, Tensor>
            {
                [Linear(32, 32)] public partial QLinear Good { get; }
                [Linear("Missing", 32)] public partial QLinear Bad { get; }
                public M() : base("M") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => x;
            }
            """);
        Assert.Equal(new[] { "TJ1010" }, result.AnalyzerDiagnostics.Select(d => d.Id));
        var source = result.Source("M.TetraJet.g.cs");
        Assert.Contains("public partial global::TetraJet.QLinear Bad", source);
        Assert.Contains("register_module(\"Good\"", source);
        Assert.DoesNotContain("register_module(\"Bad\"", source);
    }

    [Fact]
    public void Classes_with_the_same_name_in_different_namespaces_get_their_own_files()
    {
        const string model = """
            public sealed partial class M : nn.Module<Tensor, Tensor>
            {
                [Linear(32, 32)] public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
                public override Tensor forward(Tensor x) => L.call(x);
            }
            """;
        var result = GeneratorHarness.Run(Sources.Usings + "namespace A;\n" + model, Sources.Usings + "namespace B;\n" + model);
        Assert.Empty(result.CompilerDiagnostics);
        Assert.Equal(
            new[] { "A.M.TetraJet.g.cs", "B.M.TetraJet.g.cs", "TetraJet.Plan.Bf16.g.cs", "TetraJet.Plans.g.cs", "TetraJet.Recipes.g.cs" },
            result.Run.GeneratedSources.Select(s => s.HintName).OrderBy(n => n, StringComparer.Ordinal));
    }

    [Fact]
    public void A_class_with_Quantize_but_no_Linear_properties_gets_nothing_but_a_warning()
    {
        var result = GeneratorHarness.Run(Sources.Usings + """
            [Quantize(Format.NVFP4, OsciReset = true)]
            public sealed class Plain : nn.Module<Tensor, Tensor>
            {
                public Plain() : base("Plain") { }
                public override Tensor forward(Tensor x) => x;
            }
            """);
        Assert.Empty(result.Run.GeneratedSources);
        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Empty(result.CompilerDiagnostics);
        Assert.Equal(new[] { "TJ1014" }, result.AnalyzerDiagnostics.Select(d => d.Id));
    }
}
