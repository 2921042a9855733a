using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Generators.Tests.Models;

// Models written with the DSL in this project: the generator runs on them at build time (it is an analyzer of this project).

/// <summary>DESIGN.md's model with an extra MXFP4 layer: class-wide TetraJet-v2 with per-layer overrides.</summary>
[Quantize(Recipe.TetraJetV2, OsciReset = true)]
public sealed partial class DesignMlp : nn.Module<Tensor, Tensor>
{
    [Linear(128, 256)] public partial QLinear Up { get; }
    [Linear(256, 128)] public partial QLinear Down { get; }
    [Linear(128, 64), Quantize(Format.MXFP4, QEma = true)] public partial QLinear Mid { get; }
    [Linear(64, 10, bias: false), Quantize(Format.BF16)] public partial QLinear Head { get; }

    public DesignMlp() : base(nameof(DesignMlp))
    {
        InitializeQuantization();
        RegisterComponents();
    }

    /// <summary>Every layer without its own [Quantize] (Up, Down) takes <paramref name="recipe"/>.</summary>
    public DesignMlp(Recipe recipe) : base(nameof(DesignMlp))
    {
        InitializeQuantization(recipe);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
        => Head.call(nn.functional.relu(Mid.call(Down.call(nn.functional.gelu(Up.call(x))))));
}

/// <summary>Sizes from members, no [Quantize] anywhere: BF16.</summary>
public sealed partial class SizedBlock : nn.Module<Tensor, Tensor>
{
    private readonly int _hidden;

    public SizedBlock(int width, int hidden) : base(nameof(SizedBlock))
    {
        Width = width;
        _hidden = hidden;
        InitializeQuantization();
        RegisterComponents();
    }

    public int Width { get; }

    [Linear(nameof(Width), nameof(_hidden))] public partial QLinear In { get; }
    [Linear(nameof(_hidden), nameof(Width), false)] public partial QLinear Out { get; }

    public override Tensor forward(Tensor x) => Out.call(nn.functional.relu(In.call(x)));
}

/// <summary>Member sizes under NVFP4: the run-time check sees the 128 multiple.</summary>
[Quantize(Format.NVFP4)]
public sealed partial class SizedNvfp4 : nn.Module<Tensor, Tensor>
{
    public SizedNvfp4(int width) : base(nameof(SizedNvfp4))
    {
        Width = width;
        InitializeQuantization();
        RegisterComponents();
    }

    public int Width { get; }

    [Linear(nameof(Width), nameof(Width))] public partial QLinear Proj { get; }

    public override Tensor forward(Tensor x) => Proj.call(x);
}

/// <summary>One layer per remaining recipe, so that every recipe has a generated configuration to check.</summary>
public sealed partial class RecipeZoo : nn.Module<Tensor, Tensor>
{
    [Linear(128, 128), Quantize(Recipe.Microscaling)] public partial QLinear Micro { get; }
    [Linear(128, 128), Quantize(Recipe.NvidiaNvfp4)] public partial QLinear Nvidia { get; }
    [Linear(128, 256), Quantize(Format.MXFP4, ScaleRule = ScaleRule.Ocp, QEma = true)] public partial QLinear MicroEma { get; }
    // OutControl needs K ≥ 256: 128 outlier channels (a whole block) and at least 128 FP4 channels beside them.
    [Linear(256, 128), Quantize(Format.NVFP4, OutControl = true, OutlierFraction = 0.25)] public partial QLinear Outliers { get; }
    [Linear(128, 128), Quantize(Recipe.TetraJetV2, OsciReset = true, OsciResetLean = true, OsciResetLeanFraction = 0.05)] public partial QLinear Lean { get; }

    public RecipeZoo() : base(nameof(RecipeZoo))
    {
        InitializeQuantization();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Lean.call(Outliers.call(MicroEma.call(Nvidia.call(Micro.call(x)))));
}

/// <summary>
/// Per-slot ablations, as in the TetraJet paper's quantizer analysis: one class-wide override (Q3 rounds to nearest),
/// a layer that adds its own (Q5 and Q6 in BF16), a layer that replaces the class's Q3, and a layer with its own recipe.
/// </summary>
#pragma warning disable TJ1017 // on purpose: the biased gradient of a nearest-rounding Q3 is what this ablation measures
[Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q3, Format.MXFP4, Rounding = Rounding.Nearest)]
#pragma warning restore TJ1017
public sealed partial class SlotAblation : nn.Module<Tensor, Tensor>
{
    [Linear(64, 128)] public partial QLinear Up { get; }
    [Linear(128, 64), QuantizeSlot(Slot.Q5, Format.BF16), QuantizeSlot(Slot.Q6, Format.BF16)] public partial QLinear Down { get; }
    [Linear(64, 128), Quantize(Recipe.NvidiaNvfp4), QuantizeSlot(Slot.Q4, Format.NVFP4PerTensor, Rounding = Rounding.Stochastic)] public partial QLinear Nvidia { get; }
    [Linear(128, 32), QuantizeSlot(Slot.Q3, Format.MXFP8, Rounding = Rounding.Stochastic)] public partial QLinear Head { get; }

    public SlotAblation() : base(nameof(SlotAblation))
    {
        InitializeQuantization();
        RegisterComponents();
    }

    /// <summary>Layers without their own [Quantize] take <paramref name="recipe"/>, with their [QuantizeSlot]s applied over it.</summary>
    public SlotAblation(Recipe recipe) : base(nameof(SlotAblation))
    {
        InitializeQuantization(recipe);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
        => Head.call(nn.functional.gelu(Nvidia.call(Down.call(nn.functional.gelu(Up.call(x))))));
}

#pragma warning disable TJ1011 // on purpose: shows what happens when the layers are never created
public sealed partial class Uninitialized : nn.Module<Tensor, Tensor>
{
    [Linear(32, 32)] public partial QLinear Layer { get; }

    public Uninitialized() : base(nameof(Uninitialized)) => RegisterComponents();

    public override Tensor forward(Tensor x) => Layer.call(x);
}
#pragma warning restore TJ1011
