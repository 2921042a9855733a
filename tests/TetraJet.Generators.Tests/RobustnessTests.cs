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
        Assert.DoesNotContain(result.GeneratorDiagnostics, d => d.Id is "CS8784" or "CS8785");
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
        Assert.Equal(new[] { "TJ1010" }, result.GeneratorDiagnostics.Select(d => d.Id));
        var source = result.Source("M.TetraJet.g.cs");
        Assert.Contains("public partial global::TetraJet.QLinear Bad", source);
        Assert.Contains("register_module(\"Good\"", source);
        Assert.DoesNotContain("register_module(\"Bad\"", source);
    }
}
