using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace TetraJet.Generators.Tests;

/// <summary>Each diagnostic: its ID, severity, message and exact location (marked <c>[|...|]</c> in the source).</summary>
public class DiagnosticTests
{
    private const string Usings = Sources.Usings;

    private static Diagnostic Single(string marked, string id, DiagnosticSeverity severity)
    {
        var markup = Markup.Parse(Usings + marked);
        var result = GeneratorHarness.Run(false, markup.Source);   // severities as declared, not promoted
        Assert.Empty(result.GeneratorDiagnostics);                  // the analyzers report, the generator only skips
        var diagnostics = result.AnalyzerDiagnostics.Where(d => d.Id.StartsWith("TJ", StringComparison.Ordinal)).ToList();
        var diagnostic = Assert.Single(diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(severity, diagnostic.Severity);
        AssertLocation(markup, diagnostic);
        Assert.Equal("https://github.com/tetrajet/TetraJet.NET/blob/main/docs/DSL.md#" + id.ToLowerInvariant(), diagnostic.Descriptor.HelpLinkUri);
        return diagnostic;
    }

    private static void AssertLocation(Markup markup, Diagnostic diagnostic)
    {
        Assert.Equal("Model.cs", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(markup.Span, diagnostic.Location.SourceSpan);
        Assert.Equal(markup.LineSpan, diagnostic.Location.GetLineSpan().Span);
    }

    private const string Module = " : nn.Module<Tensor, Tensor>";
    private const string Body = """
            public override Tensor forward(Tensor x) => x;
        """;

    [Fact]
    public void TJ1001_class_not_partial()
    {
        var d = Single($$"""
            public sealed class [|Mlp|]{{Module}}
            {
                [Linear(32, 32)] public partial QLinear Up { get; }
                public Mlp() : base("Mlp") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1001", DiagnosticSeverity.Error);
        Assert.Equal("Type 'Mlp' declares [Linear] properties but is not partial; add the 'partial' modifier to 'Mlp' so that the generator can add the layers", d.GetMessage());
        // The location is exact: line 4 (0-based 3, after the three usings), columns 20–23.
        Assert.Equal(new LinePosition(3, 20), d.Location.GetLineSpan().StartLinePosition);
        Assert.Equal(new LinePosition(3, 23), d.Location.GetLineSpan().EndLinePosition);
    }

    [Fact]
    public void TJ1001_containing_type_not_partial()
    {
        var d = Single($$"""
            public static class [|Zoo|]
            {
                public sealed partial class Mlp{{Module}}
                {
                    [Linear(32, 32)] public partial QLinear Up { get; }
                    public Mlp() : base("Mlp") { InitializeQuantization(); }
                {{Body}}
                }
            }
            """, "TJ1001", DiagnosticSeverity.Error);
        Assert.Equal("Type 'Zoo' contains 'Mlp', which declares [Linear] properties, but is not partial; add the 'partial' modifier to 'Zoo' so that the generator can add the layers", d.GetMessage());
    }

    [Fact]
    public void TJ1001_names_each_type_that_lacks_partial()
    {
        var result = GeneratorHarness.Run(false, Usings + $$"""
            public static class Zoo
            {
                public partial class Pen
                {
                    public sealed class Mlp{{Module}}
                    {
                        [Linear(32, 32)] public partial QLinear Up { get; }
                        public Mlp() : base("Mlp") { InitializeQuantization(); }
                    {{Body}}
                    }
                }
            }
            """);
        Assert.Equal(
            new[]
            {
                "Type 'Mlp' declares [Linear] properties but is not partial; add the 'partial' modifier to 'Mlp' so that the generator can add the layers",
                "Type 'Zoo' contains 'Pen.Mlp', which declares [Linear] properties, but is not partial; add the 'partial' modifier to 'Zoo' so that the generator can add the layers",
            },
            result.AnalyzerDiagnostics.Where(d => d.Id == "TJ1001").Select(d => d.GetMessage()).OrderBy(m => m, StringComparer.Ordinal));
        Assert.Equal(2, result.AnalyzerDiagnostics.Length);
    }

    [Fact]
    public void TJ1002_class_not_a_module()
    {
        var d = Single("""
            public sealed partial class [|Plain|]
            {
                [Linear(32, 32)] public partial QLinear Up { get; }
            }
            """, "TJ1002", DiagnosticSeverity.Error);
        Assert.Equal("Type 'Plain' declares [Linear] properties but does not derive from TorchSharp.torch.nn.Module; derive it from nn.Module<Tensor, Tensor> (or another Module) so that its layers can be registered", d.GetMessage());
    }

    [Theory]
    [InlineData("[Quantize(Format.NVFP4)]", "[Linear([|100|], 128)]", "inFeatures = 100 of layer 'L' is not a multiple of 128, the block of its quantizer Q1 (TetraJet-v2 NVFP4 outer blocks of 128, recipe TetraJetV2); use a multiple of 128 (e.g. 128), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer")]
    [InlineData("[Quantize(Format.MXFP4)]", "[Linear(64, [|outFeatures: 48|])]", "outFeatures = 48 of layer 'L' is not a multiple of 32, the block of its quantizer Q1 (MXFP4 blocks of 32, recipe TetraJet); use a multiple of 32 (e.g. 64), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer")]
    [InlineData("[Quantize(Recipe.NvidiaNvfp4)]", "[Linear([|40|], 32)]", "inFeatures = 40 of layer 'L' is not a multiple of 16, the block of its quantizer Q1 (NVIDIA NVFP4 blocks of 16, recipe NvidiaNvfp4); use a multiple of 16 (e.g. 48), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer")]
    [InlineData("[Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q3, Format.NVFP4)]", "[Linear([|64|], 128)]", "inFeatures = 64 of layer 'L' is not a multiple of 128, the block of its quantizer Q3 (TetraJet-v2 NVFP4 outer blocks of 128, set by [QuantizeSlot] over recipe TetraJet); use a multiple of 128 (e.g. 128), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer")]
    [InlineData("", "[Linear(32, [|48|]), QuantizeSlot(Slot.Q2, Format.MXFP8)]", "outFeatures = 48 of layer 'L' is not a multiple of 32, the block of its quantizer Q2 (MXFP8 blocks of 32, set by [QuantizeSlot] over recipe BF16); use a multiple of 32 (e.g. 64), or choose another [Quantize] recipe or [QuantizeSlot] format for this layer")]
    [InlineData("[Quantize(Format.NVFP4)]", "[Linear(256, [|64|]), Quantize(Recipe.Microscaling)]", null)]
    [InlineData("[Quantize(Format.NVFP4), QuantizeSlot(Slot.Q1, Format.BF16), QuantizeSlot(Slot.Q2, Format.BF16), QuantizeSlot(Slot.Q3, Format.BF16), QuantizeSlot(Slot.Q4, Format.BF16)]", "[Linear(48, [|48|])]", null)]
    public void TJ1003_features_not_a_multiple_of_the_block(string classAttribute, string linear, string? message)
    {
        var source = $$"""
            {{classAttribute}}
            public sealed partial class M{{Module}}
            {
                {{linear}} public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """;
        if (message is null)
        {
            // The property's recipe (Microscaling, 32) overrides the class's (128): 64 is fine. With Q1–Q4 in BF16,
            // only Q5 and Q6 quantize, along the (padded) tokens: any features are fine.
            var result = GeneratorHarness.Run(Markup.Parse(Usings + source).Source);
            Assert.Empty(result.AllDiagnostics);
            return;
        }
        var d = Single(source, "TJ1003", DiagnosticSeverity.Error);
        Assert.Equal(message, d.GetMessage());
    }

    [Theory]
    [InlineData("[Linear(32, [|0|])]", "outFeatures = 0 of layer 'L' must be greater than 0; give the layer's real input/output size")]
    [InlineData("[Linear([|-32|], 32)]", "inFeatures = -32 of layer 'L' must be greater than 0; give the layer's real input/output size")]
    public void TJ1004_features_not_positive(string linear, string message)
    {
        var d = Single($$"""
            public sealed partial class M{{Module}}
            {
                {{linear}} public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1004", DiagnosticSeverity.Error);
        Assert.Equal(message, d.GetMessage());
    }

    private static Diagnostic OnClassAttribute(string attribute, string id, DiagnosticSeverity severity) => Single($$"""
        {{attribute}}
        public sealed partial class M{{Module}}
        {
            [Linear(128, 128)] public partial QLinear L { get; }
            public M() : base("M") { InitializeQuantization(); }
        {{Body}}
        }
        """, id, severity);

    [Theory]
    [InlineData("1.5")]
    [InlineData("0")]
    [InlineData("1")]
    public void TJ1005_ema_decay_out_of_range(string value)
    {
        var d = OnClassAttribute($"[Quantize(Format.MXFP4, QEma = true, [|EmaDecay = {value}|])]", "TJ1005", DiagnosticSeverity.Error);
        Assert.Equal($"EmaDecay = {value} is outside (0, 1); use a decay such as 0.998 (the default)", d.GetMessage());
    }

    [Theory]
    [InlineData("1")]
    [InlineData("0.5")]
    public void TJ1006_osci_reset_threshold_out_of_range(string value)
    {
        var d = OnClassAttribute($"[Quantize(Format.NVFP4, OsciReset = true, [|OsciResetThreshold = {value}|])]", "TJ1006", DiagnosticSeverity.Error);
        Assert.Equal($"OsciResetThreshold = {value} must be greater than 1 (a ratio of quantized to full-precision movement); use e.g. 8 (the default)", d.GetMessage());
    }

    [Theory]
    [InlineData("0.6")]
    [InlineData("0")]
    public void TJ1007_outlier_fraction_out_of_range(string value)
    {
        var d = OnClassAttribute($"[Quantize(Format.NVFP4, OutControl = true, [|OutlierFraction = {value}|])]", "TJ1007", DiagnosticSeverity.Error);
        Assert.Equal($"OutlierFraction = {value} is outside (0, 0.5]; use a fraction of input channels such as 0.1 (the default)", d.GetMessage());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1.5")]
    public void TJ1012_osci_reset_lean_fraction_out_of_range(string value)
    {
        var d = OnClassAttribute($"[Quantize(Format.NVFP4, OsciReset = true, OsciResetLean = true, [|OsciResetLeanFraction = {value}|])]", "TJ1012", DiagnosticSeverity.Error);
        Assert.Equal($"OsciResetLeanFraction = {value} is outside (0, 1]; use a fraction of the weight such as 0.1 (the default)", d.GetMessage());
    }

    [Theory]
    [InlineData("[Quantize(Format.NVFP4, OutControl = true)]", "[Linear([|128|], 128)]", 128, "0.1", 128, 0, 256)]
    [InlineData("[Quantize(Format.MXFP4, OutControl = true)]", "[Linear([|192|], 64)]", 192, "0.1", 128, 64, 256)]
    [InlineData("[Quantize(Format.MXFP4)]", "[Linear([|288|], 64), Quantize(Format.MXFP4, OutControl = true, OutlierFraction = 0.5)]", 288, "0.5", 256, 32, 384)]
    [InlineData("[Quantize(Format.NVFP4, OutControl = true, OutlierFraction = 0.005)]", "[Linear([|128|], 128)]", 128, "0.005", 0, 128, 256)]
    public void TJ1013_out_control_on_a_layer_too_narrow_for_it(string classAttribute, string linear, int k, string fraction, int outliers, int fp4, int widthNeeded)
    {
        var d = Single($$"""
            {{classAttribute}}
            public sealed partial class M{{Module}}
            {
                {{linear}} public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1013", DiagnosticSeverity.Error);
        Assert.Equal($"OutControl on layer 'L' with inFeatures = {k} and OutlierFraction = {fraction} would split the input channels into {outliers} outlier and {fp4} FP4 channels, " +
            $"but it needs a whole block of 128 in each part (the outliers round up to blocks of 128); give this layer a [Quantize] without OutControl, or at least {widthNeeded} input features", d.GetMessage());
    }

    [Theory]
    [InlineData("[Linear(256, 128)]")]                                                          // 128 outliers + 128 FP4 channels
    [InlineData("[Linear(128, 128), Quantize(Format.NVFP4)]")]                                    // the property drops OutControl
    [InlineData("[Linear(nameof(Width), 128)]")]                                                  // unknown until run time: a notice there
    public void TJ1013_not_where_OutControl_fits_or_is_off(string linear)
    {
        var source = $$"""
            [Quantize(Format.NVFP4, OutControl = true)]
            public sealed partial class M{{Module}}
            {
                public int Width { get; } = 128;
                {{linear}} public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """;
        Assert.Empty(GeneratorHarness.Run(Usings + source).GeneratorDiagnostics);
    }

    [Theory]
    [InlineData("[Quantize(Format.NVFP4, [|QEma = true|])]", "QEma has no effect with recipe TetraJetV2: Q-EMA guides the rounding of MXFP4 weights only; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.BF16, [|QRamping = true|])]", "QRamping has no effect with recipe BF16: Q-Ramping damps MXFP4 weight oscillation only; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.BF16, [|OsciReset = true|])]", "OsciReset has no effect with recipe BF16: BF16 weights are not quantized, so they do not oscillate; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.BF16, [|OutControl = true|])]", "OutControl has no effect with recipe BF16: BF16 inputs are not quantized, so there are no outliers to keep; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Recipe.TetraJetV2, [|ScaleRule = ScaleRule.Ocp|])]", "ScaleRule has no effect with recipe TetraJetV2: the OCP scale rule applies to MXFP4 blocks only; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.MXFP4, [|EmaDecay = 0.99|])]", "EmaDecay has no effect with recipe TetraJet: it is read only when QEma = true; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.NVFP4, [|OsciResetLean = true|])]", "OsciResetLean has no effect with recipe TetraJetV2: it is read only when OsciReset = true; remove the option or choose a recipe that uses it")]
    [InlineData("[Quantize(Format.NVFP4, OsciReset = true, [|OsciResetLeanFraction = 0.05|])]", "OsciResetLeanFraction has no effect with recipe TetraJetV2: it is read only when OsciResetLean = true; remove the option or choose a recipe that uses it")]
    public void TJ1008_option_without_effect(string attribute, string message)
    {
        var d = OnClassAttribute(attribute, "TJ1008", DiagnosticSeverity.Warning);
        Assert.Equal(message, d.GetMessage());
    }

    [Fact]
    public void TJ1008_on_a_property_level_attribute()
    {
        var d = Single($$"""
            public sealed partial class M{{Module}}
            {
                [Linear(128, 128), Quantize(Recipe.NvidiaNvfp4, [|QRamping = true|])] public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1008", DiagnosticSeverity.Warning);
        Assert.StartsWith("QRamping has no effect with recipe NvidiaNvfp4", d.GetMessage());
    }

    [Theory]
    [InlineData("public QLinear [|L|] { get; }", "is not partial; add the 'partial' modifier")]
    [InlineData("public partial QLinear [|L|] { get; set; }", "must be a get-only declaration without a body ('{ get; }')")]
    [InlineData("public partial nn.Module<Tensor, Tensor> [|L|] { get; }", "is of type 'TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>'; it must be of type TetraJet.QLinear")]
    [InlineData("public static partial QLinear [|L|] { get; }", "is static; it must be an instance property")]
    public void TJ1009_linear_property_of_the_wrong_shape(string property, string problem)
    {
        var d = Single($$"""
            public sealed partial class M{{Module}}
            {
                [Linear(32, 32)] {{property}}
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1009", DiagnosticSeverity.Error);
        Assert.Equal($"[Linear] property 'L' {problem}; declare it as 'public partial QLinear L {{ get; }}'", d.GetMessage());
    }

    [Theory]
    [InlineData("[Linear([|\"Missing\"|], 32)]", "inFeatures", "Missing")]
    [InlineData("[Linear(nameof(Size), [|nameof(Label)|])]", "outFeatures", "Label")]
    [InlineData("[Linear([|nameof(Ratio)|], nameof(Size))]", "inFeatures", "Ratio")]
    [InlineData("[Linear(32, [|nameof(Hidden)|])]", "outFeatures", "Hidden")]
    public void TJ1010_size_member_not_found(string linear, string parameter, string member)
    {
        var d = Single($$"""
            public sealed partial class M{{Module}}
            {
                public string Label { get; } = "x";
                public double Ratio = 0.5;
                public int Size = 32;
                private long Hidden => Size;
                {{linear}} public partial QLinear L { get; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1010", DiagnosticSeverity.Error);
        Assert.Equal($"{parameter} of layer 'L' names '{member}', which is not an int field or property of 'M'; pass nameof(...) of an int field or property, or a constant", d.GetMessage());
    }

    [Fact]
    public async Task TJ1011_constructor_that_never_initializes()
    {
        var markup = Markup.Parse(Usings + $$"""
            public sealed partial class M{{Module}}
            {
                [Linear(32, 32)] public partial QLinear L { get; }
                public [|M|]() : base("M") { RegisterComponents(); }
                public M(int unused) : this() { }
                public M(Recipe recipe) : base("M") { InitializeQuantization(recipe); RegisterComponents(); }
                public M(string name) : base(name) { this.InitializeQuantization(); }
            {{Body}}
            }
            """);
        var diagnostics = await GeneratorHarness.AnalyzeAsync(markup.Source);
        var d = Assert.Single(diagnostics);
        Assert.Equal("TJ1011", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        AssertLocation(markup, d);
        Assert.Equal("This constructor of 'M' never calls InitializeQuantization(), so its [Linear] layers stay null; call InitializeQuantization() (or InitializeQuantization(recipe)) before RegisterComponents()", d.GetMessage());
    }

    [Fact]
    public async Task TJ1011_is_not_reported_for_classes_without_linear_properties()
    {
        var diagnostics = await GeneratorHarness.AnalyzeAsync(Usings + """
            public sealed class Plain : nn.Module<Tensor, Tensor>
            {
                public Plain() : base("Plain") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => x;
            }
            """);
        Assert.Empty(diagnostics);
    }

    private static Diagnostic OnLayer(string classAttributes, string layerAttributes, string id, DiagnosticSeverity severity) => Single($$"""
        {{classAttributes}}
        public sealed partial class M{{Module}}
        {
            [Linear(128, 128){{layerAttributes}}] public partial QLinear L { get; }
            public M() : base("M") { InitializeQuantization(); }
        {{Body}}
        }
        """, id, severity);

    [Fact]
    public void TJ1014_Quantize_on_a_class_without_layers()
    {
        var d = Single($$"""
            [[|Quantize(Format.NVFP4)|]]
            public sealed class Plain{{Module}}
            {
                public Plain() : base("Plain") { }
            {{Body}}
            }
            """, "TJ1014", DiagnosticSeverity.Warning);
        Assert.Equal("[Quantize] on 'Plain' has no effect: 'Plain' declares no [Linear] properties; remove the attribute, or move it to a [Linear] property or to the class that declares them", d.GetMessage());
    }

    [Fact]
    public void TJ1014_QuantizeSlot_on_a_partial_class_without_layers()
    {
        var d = Single($$"""
            [[|QuantizeSlot(Slot.Q5, Format.BF16)|]]
            public sealed partial class Plain{{Module}}
            {
                public Plain() : base("Plain") { }
            {{Body}}
            }
            """, "TJ1014", DiagnosticSeverity.Warning);
        Assert.Equal("[QuantizeSlot] on 'Plain' has no effect: 'Plain' declares no [Linear] properties; remove the attribute, or move it to a [Linear] property or to the class that declares them", d.GetMessage());
    }

    [Fact]
    public void TJ1014_Quantize_on_a_property_without_Linear()
    {
        var d = Single($$"""
            public sealed partial class M{{Module}}
            {
                [Linear(32, 32)] public partial QLinear L { get; }
                [[|Quantize(Format.MXFP4)|]] public QLinear? Spare { get; set; }
                public M() : base("M") { InitializeQuantization(); }
            {{Body}}
            }
            """, "TJ1014", DiagnosticSeverity.Warning);
        Assert.Equal("[Quantize] on 'Spare' has no effect: 'Spare' is not a [Linear] property; remove the attribute, or move it to a [Linear] property or to the class that declares them", d.GetMessage());
    }

    [Theory]
    [InlineData("MXFP8")]
    [InlineData("NVFP4PerTensor")]
    public void TJ1015_format_that_names_no_recipe(string format)
    {
        var d = OnLayer($"[Quantize([|Format.{format}|])]", "", "TJ1015", DiagnosticSeverity.Error);
        Assert.Equal($"Format.{format} names no recipe; [Quantize] takes Format.BF16, Format.MXFP4, Format.NVFP4 or a named recipe such as Recipe.NvidiaNvfp4; to put single quantizers in {format}, add [QuantizeSlot(Slot.Q1, Format.{format})] (any slot) over a recipe", d.GetMessage());
    }

    [Theory]
    [InlineData("[Quantize(Recipe.TetraJetV2), [|QuantizeSlot(Slot.Q4, Format.BF16)|]]", "",
        "Q3 applies the random Hadamard transform but Q4 does not, so the transforms on the two operands of the dgrad GEMM would not cancel; a BF16 Q4 applies no transform, so add Hadamard = false to Q3 (e.g. [QuantizeSlot(Slot.Q3, Format.NVFP4, Hadamard = false)])")]
    [InlineData("[Quantize(Recipe.TetraJetV2)]", ", QuantizeSlot(Slot.Q3, Format.NVFP4, [|Hadamard = false|])",
        "Q4 applies the random Hadamard transform but Q3 does not, so the transforms on the two operands of the dgrad GEMM would not cancel; add Hadamard = true to Q3's [QuantizeSlot], or Hadamard = false to Q4's")]
    [InlineData("[Quantize(Recipe.TetraJet)]", ", QuantizeSlot(Slot.Q6, Format.MXFP4, [|Hadamard = true|])",
        "Q6 applies the random Hadamard transform but Q5 does not, so the transforms on the two operands of the wgrad GEMM would not cancel; add Hadamard = true to Q5's [QuantizeSlot], or Hadamard = false to Q6's")]
    public void TJ1016_transform_on_one_operand_of_a_GEMM(string classAttributes, string layerAttributes, string message)
    {
        var d = OnLayer(classAttributes, layerAttributes, "TJ1016", DiagnosticSeverity.Error);
        Assert.Equal(message, d.GetMessage());
    }

    [Theory]
    [InlineData("[Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q3, Format.MXFP4, [|Rounding = Rounding.Nearest|])]", "", "Q3")]
    [InlineData("[Quantize(Recipe.NvidiaNvfp4)]", ", [|QuantizeSlot(Slot.Q6, Format.MXFP4)|]", "Q6")]   // the NVIDIA Q6 rounds to nearest, and the override keeps it
    public void TJ1017_nearest_rounding_in_a_backward_slot(string classAttributes, string layerAttributes, string slot)
    {
        var d = OnLayer(classAttributes, layerAttributes, "TJ1017", DiagnosticSeverity.Warning);
        Assert.Equal($"{slot} rounds to nearest, which biases the gradient (only stochastic rounding is unbiased); use Rounding = Rounding.Stochastic, or suppress TJ1017 where the bias is what you measure", d.GetMessage());
    }

    [Fact]
    public void TJ1018_EMA_guided_rounding_in_a_slot()
    {
        var d = OnLayer("[Quantize(Recipe.TetraJet)]", ", QuantizeSlot(Slot.Q2, Format.MXFP4, [|Rounding = Rounding.EmaGuided|])", "TJ1018", DiagnosticSeverity.Error);
        Assert.Equal("Rounding.EmaGuided is not a per-slot choice: Q-EMA guides Q2 when the recipe sets QEma; use Rounding.Nearest or Rounding.Stochastic here, and [Quantize(..., QEma = true)] for Q-EMA", d.GetMessage());
    }

    [Fact]
    public void TJ1019_slot_overridden_twice()
    {
        var d = OnLayer("[Quantize(Recipe.TetraJet)]", ", QuantizeSlot(Slot.Q5, Format.BF16), [|QuantizeSlot(Slot.Q5, Format.MXFP8)|]", "TJ1019", DiagnosticSeverity.Error);
        Assert.Equal("Q5 is overridden twice on 'L'; keep one [QuantizeSlot(Slot.Q5, ...)] (a property's override of a slot already replaces the class's)", d.GetMessage());
    }

    [Theory]
    [InlineData(", QuantizeSlot(Slot.Q5, Format.BF16, [|Rounding = Rounding.Stochastic|])", "Rounding has no effect with Format.BF16: a BF16 quantizer passes its input through unrounded; remove the option")]
    [InlineData(", QuantizeSlot(Slot.Q4, Format.BF16, [|Hadamard = false|])", "Hadamard has no effect with Format.BF16: a BF16 quantizer applies no transform; remove the option")]
    [InlineData(", QuantizeSlot(Slot.Q1, Format.NVFP4, [|ScaleRule = ScaleRule.Ocp|])", "ScaleRule has no effect with Format.NVFP4: only MXFP4 blocks have a scale rule; remove the option")]
    public void TJ1020_slot_option_without_effect(string layerAttributes, string message)
    {
        var d = OnLayer("[Quantize(Recipe.TetraJet)]", layerAttributes, "TJ1020", DiagnosticSeverity.Warning);
        Assert.Equal(message, d.GetMessage());
    }

    [Theory]
    [InlineData("Q1")]
    [InlineData("Q2")]
    public void TJ1021_transform_in_a_forward_slot(string slot)
    {
        var d = OnLayer("[Quantize(Recipe.TetraJetV2)]", $", QuantizeSlot(Slot.{slot}, Format.NVFP4, [|Hadamard = true|])", "TJ1021", DiagnosticSeverity.Error);
        Assert.Equal($"{slot} cannot apply the random Hadamard transform: the forward operands X̂ and Ŵ are kept for backward untransformed; remove Hadamard = true", d.GetMessage());
    }
}
