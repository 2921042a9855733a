using System;
using System.Collections.Generic;
using System.Linq;
using TetraJet.Plans;

namespace TetraJet.Generators;

/// <summary>
/// One quantizer slot of a configuration, as data (mirrors <c>TetraJet.QuantizerSlot</c>). Formats and roundings
/// use the <see cref="Dataflow"/> codes; <see cref="Source"/> the order of <c>TetraJet.SlotSource</c>.
/// </summary>
internal sealed record SlotModel(int Format, int Rounding, bool Ocp, bool Tile16, bool Hadamard, int Source)
{
    public const int Direct = 0, ForwardDequantized = 1, ForwardCodesTransposed = 2, Original = 3;

    public static SlotModel None { get; } = new(Dataflow.None, Dataflow.Nearest, false, false, false, Direct);

    /// <summary>The dataflow view of a parsed slot (the kinds mirror the runtime's enums, value for value).</summary>
    public static SlotModel From(SlotSpec s) =>
        new((int)s.Format, (int)s.Rounding, s.Format == FormatKind.MXFP4 && s.ScaleRule == ScaleRuleKind.Ocp, s.Tile16, s.AppliesHadamard, (int)s.Source);

    public bool IsQuantized => Format != Dataflow.None;

    /// <summary>The C# expression of its <c>QuantSpec</c> (with the file's usings).</summary>
    public string SpecExpression(int rounding) =>
        "new QuantSpec(QuantFormat." + FormatName + ", Rounding." + RoundingName(rounding)
        + (Format is Dataflow.Mxfp4 ? ", ScaleRule." + (Ocp ? "Ocp" : "TetraJet") : "")
        + (Tile16 ? ", Tile16: true" : "") + ")";

    public string FormatName => Format switch
    {
        Dataflow.Mxfp4 => "MXFP4",
        Dataflow.Nvfp4 => "NVFP4",
        Dataflow.Nvfp4Tensor => "NVFP4Tensor",
        Dataflow.Mxfp8 => "MXFP8",
        _ => "None",
    };

    public static string RoundingName(int rounding) => rounding switch
    {
        Dataflow.Stochastic => "Stochastic",
        Dataflow.EmaGuided => "EmaGuided",
        _ => "Nearest",
    };

    /// <summary>A human description, e.g. "MXFP4 (TetraJet rule), SR + RHT".</summary>
    public string Description
    {
        get
        {
            if (!IsQuantized) return "BF16";
            var text = Format switch
            {
                Dataflow.Mxfp4 => "MXFP4 (" + (Ocp ? "OCP" : "TetraJet") + " rule)",
                Dataflow.Nvfp4 => "NVFP4 (16 in 128)",
                Dataflow.Nvfp4Tensor => Tile16 ? "NVFP4 (per tensor, 16x16 tiles)" : "NVFP4 (per tensor)",
                _ => FormatName,
            };
            text += Rounding == Dataflow.Stochastic ? " SR" : Rounding == Dataflow.EmaGuided ? " EMA-guided" : " RTN";
            if (Hadamard) text += " + RHT";
            return text;
        }
    }
}

/// <summary>
/// What decides a generated plan (mirrors <c>TetraJet.Plans.PlanKey</c>): the six slots and the options that change
/// the dataflow. Configurations with equal keys share one plan.
/// </summary>
internal sealed record PlanSpec(string Name, string Title, string RecipeExpression, EquatableArray<SlotModel> Slots, bool QEma, bool OutControl)
{
    public SlotModel Slot(int number) => Slots[number - 1];

    public static PlanSpec From(ConfigSpec config)
    {
        var slots = config.Slots.Select(SlotModel.From).ToArray();
        bool qEma = config.QEma && slots[1].IsQuantized;
        bool outControl = config.OutControl && slots[0].IsQuantized;
        var name = config.Recipe == RecipeKind.BF16 ? "Bf16" : (config.Format == FormatKind.MXFP4 ? "Mxfp4_" : "Nvfp4_") + config.Recipe;
        var title = RecipeTable.DisplayName(config.Recipe);
        for (int i = 0; i < 6; i++)
        {
            if (!config.IsOverridden(i)) continue;
            name += "_" + SlotSpec.Names[i] + config.Slots[i].NamePart;
            title += ", " + SlotSpec.Names[i] + " " + config.Slots[i].Text;
        }
        if (qEma) { name += "_QEma"; title += ", Q-EMA"; }
        if (outControl) { name += "_OutControl"; title += ", OutControl"; }
        var options = new List<string>();
        if (qEma) options.Add("QEma = true");
        if (outControl) options.Add("OutControl = true");
        var recipe = "Recipe.Get(RecipeId." + config.Recipe + ")" + string.Concat(config.OverrideCalls)
            + (options.Count == 0 ? "" : " with { " + string.Join(", ", options) + " }");
        return new PlanSpec(name, title, recipe, slots.ToEquatableArray(), qEma, outControl);
    }

    /// <summary>The plans of the named recipes with every combination of the options that change a dataflow (Q-EMA, OutControl).</summary>
    public static IEnumerable<PlanSpec> NamedRecipes()
    {
        foreach (RecipeKind recipe in Enum.GetValues(typeof(RecipeKind)))
        {
            var plain = ConfigSpec.Plain(recipe);
            yield return From(plain);
            if (recipe == RecipeKind.BF16) continue;
            yield return From(plain with { QEma = true });
            yield return From(plain with { OutControl = true });
            yield return From(plain with { QEma = true, OutControl = true });
        }
    }
}
