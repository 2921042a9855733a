namespace TetraJet.Generators.Tests;

/// <summary>Model sources shared by the snapshot, compilation and caching tests.</summary>
internal static class Sources
{
    public const string Usings = """
        using TetraJet;
        using TorchSharp;
        using static TorchSharp.torch;

        """;

    /// <summary>The model of DESIGN.md: a class-wide TetraJet-v2 recipe with a BF16 head.</summary>
    public const string DesignMlp = Usings + """
        namespace Demo;

        [Quantize(Recipe.TetraJetV2, OsciReset = true)]
        public sealed partial class Mlp : nn.Module<Tensor, Tensor>
        {
            [Linear(512, 2048)] public partial QLinear Up { get; }
            [Linear(2048, 512)] public partial QLinear Down { get; }
            [Linear(512, 10), Quantize(Format.BF16)] public partial QLinear Head { get; }

            public Mlp() : base(nameof(Mlp)) { InitializeQuantization(); RegisterComponents(); }
            public override Tensor forward(Tensor x) => Head.call(Down.call(nn.functional.gelu(Up.call(x))));
        }
        """;

    /// <summary>MXFP4 with options, the Microscaling recipe through ScaleRule.Ocp, NVIDIA's NVFP4 and no bias.</summary>
    public const string MxOptions = Usings + """
        namespace Demo.Mx;

        [Quantize(Format.MXFP4, QEma = true, EmaDecay = 0.99, QRamping = true)]
        internal partial class Encoder : nn.Module<Tensor, Tensor>
        {
            [Linear(64, 96)] internal partial QLinear Query { get; }
            [Linear(96, 256, bias: false), Quantize(Format.MXFP4, ScaleRule = ScaleRule.Ocp)] public partial QLinear Output { get; }
            [Linear(256, 32), Quantize(Recipe.NvidiaNvfp4, OutControl = true, OutlierFraction = 0.05)] public partial QLinear Probe { get; }

            public Encoder() : base("Encoder") { InitializeQuantization(); RegisterComponents(); }
            public override Tensor forward(Tensor x) => Probe.call(Output.call(Query.call(x)));
        }
        """;

    /// <summary>Sizes from members, in a generic class nested in another, without any [Quantize] (BF16).</summary>
    public const string MemberSizes = Usings + """
        namespace Demo.Nested;

        public static partial class Zoo
        {
            public sealed partial class Block<T> : nn.Module<Tensor, Tensor>
            {
                private readonly int _width;
                public int Hidden { get; }
                public static int Classes = 10;

                [Linear(nameof(_width), nameof(Hidden))] public partial QLinear In { get; }
                [Linear(nameof(Hidden), nameof(Classes), false)] public partial QLinear? Out { get; }

                public Block(int width, int hidden) : base("Block")
                {
                    _width = width;
                    Hidden = hidden;
                    InitializeQuantization();
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x) => Out!.call(In.call(x));
            }
        }
        """;

    /// <summary>Lean OsciReset, class-wide with its default fraction and on one layer with its own.</summary>
    public const string LeanOsciReset = Usings + """
        namespace Demo.Lean;

        [Quantize(Recipe.TetraJetV2, OsciReset = true, OsciResetLean = true)]
        public sealed partial class Block : nn.Module<Tensor, Tensor>
        {
            [Linear(256, 512)] public partial QLinear Up { get; }
            [Linear(512, 256), Quantize(Recipe.TetraJetV2, OsciReset = true, OsciResetLean = true, OsciResetLeanFraction = 0.05)] public partial QLinear Down { get; }

            public Block() : base(nameof(Block)) { InitializeQuantization(); RegisterComponents(); }
            public override Tensor forward(Tensor x) => Down.call(nn.functional.gelu(Up.call(x)));
        }
        """;

    /// <summary>A second model in another file that shares the DESIGN model's configuration: one config struct for both.</summary>
    public const string SharedConfig = Usings + """
        namespace Demo;

        [Quantize(Recipe.TetraJetV2, OsciReset = true)]
        public partial class Tiny : nn.Module<Tensor, Tensor>
        {
            [Linear(128, 128)] public partial QLinear Proj { get; }

            public Tiny() : base(nameof(Tiny)) { InitializeQuantization(); RegisterComponents(); }
            public override Tensor forward(Tensor x) => Proj.call(x);
        }
        """;

    /// <summary>
    /// Per-slot overrides: class-wide (wgrad in BF16), a layer's own on top (dgrad's dY in MXFP8, without the transform on
    /// either dgrad operand), and a layer with its own recipe whose Q4 is overridden (the NVIDIA Q4 then re-quantizes).
    /// </summary>
    public const string SlotOverrides = Usings + """
        namespace Demo.Slots;

        [Quantize(Recipe.TetraJetV2, OsciReset = true), QuantizeSlot(Slot.Q5, Format.BF16), QuantizeSlot(Slot.Q6, Format.BF16)]
        public sealed partial class Ablation : nn.Module<Tensor, Tensor>
        {
            [Linear(256, 512)] public partial QLinear Up { get; }
            [Linear(512, 256), QuantizeSlot(Slot.Q3, Format.MXFP8, Hadamard = false), QuantizeSlot(Slot.Q4, Format.NVFP4, Hadamard = false)] public partial QLinear Down { get; }
            [Linear(256, 64), Quantize(Recipe.NvidiaNvfp4), QuantizeSlot(Slot.Q4, Format.NVFP4PerTensor, Rounding = Rounding.Stochastic)] public partial QLinear Head { get; }

            public Ablation() : base(nameof(Ablation)) { InitializeQuantization(); RegisterComponents(); }
            public Ablation(Recipe recipe) : base(nameof(Ablation)) { InitializeQuantization(recipe); RegisterComponents(); }
            public override Tensor forward(Tensor x) => Head.call(Down.call(nn.functional.gelu(Up.call(x))));
        }
        """;
}
