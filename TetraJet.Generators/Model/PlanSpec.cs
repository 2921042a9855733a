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
internal sealed record PlanSpec(string Name, string Title, string RecipeExpression, EquatableArray<SlotModel> Slots, bool QEma, bool OutControl, bool Fp8)
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
        bool fp8 = config.Fp8Gemm && Fp8Capable(slots, outControl);
        if (qEma) { name += "_QEma"; title += ", Q-EMA"; }
        if (outControl) { name += "_OutControl"; title += ", OutControl"; }
        if (fp8) { name += "_Fp8Gemm"; title += ", FP8 GEMMs"; }
        var options = new List<string>();
        if (qEma) options.Add("QEma = true");
        if (outControl) options.Add("OutControl = true");
        if (fp8) options.Add("Gemm = GemmPath.FP8");
        var recipe = "Recipe.Get(RecipeId." + config.Recipe + ")" + string.Concat(config.OverrideCalls)
            + (options.Count == 0 ? "" : " with { " + string.Join(", ", options) + " }");
        return new PlanSpec(name, title, recipe, slots.ToEquatableArray(), qEma, outControl, fp8);
    }

    /// <summary>
    /// Whether slots (Q1..Q6) can run their GEMMs on FP8 tensor cores (<see cref="Dataflow.UsesFp8Gemms"/>, as the
    /// runtime's unspecialised plan decides it): the same storage decisions the plan emitter makes.
    /// </summary>
    public static bool Fp8Capable(IReadOnlyList<SlotModel> s, bool outControl)
    {
        bool keepsXhat = s[5].Source == SlotModel.ForwardDequantized, keepsWhat = s[3].Source != SlotModel.Direct;
        bool q1Kept = s[0].IsQuantized && keepsXhat && Stores(s[0]), q2Kept = s[1].IsQuantized && keepsWhat && Stores(s[1]);
        bool q4 = s[3].IsQuantized && s[3].Source != SlotModel.ForwardCodesTransposed && q2Kept
            && Dataflow.ReadsStorage(s[1].Format, s[1].Tile16, s[3].Format, s[3].Tile16, s[3].Rounding);
        bool q6 = s[5].IsQuantized && q1Kept && Dataflow.ReadsStorage(s[0].Format, s[0].Tile16, s[5].Format, s[5].Tile16, s[5].Rounding);
        return Dataflow.UsesFp8Gemms(s.All(x => Dataflow.Fp8Operand(x.Format, x.Tile16, x.Hadamard)), q1Kept, q2Kept, q4, q6, outControl);
    }

    /// <summary>A forward slot keeps its storage form when the format has one and no RHT is involved.</summary>
    public static bool Stores(SlotModel s) => !s.Hadamard && Dataflow.HasStorage(s.Format, s.Tile16);

    /// <summary>
    /// The plans of the named recipes with every combination of the options that change a dataflow (Q-EMA, OutControl,
    /// and FP8 GEMMs where the recipe has them).
    /// </summary>
    public static IEnumerable<PlanSpec> NamedRecipes()
    {
        foreach (RecipeKind recipe in Enum.GetValues(typeof(RecipeKind)))
        {
            var plain = ConfigSpec.Plain(recipe);
            yield return From(plain);
            if (recipe == RecipeKind.BF16) continue;
            foreach (var options in new[] { plain with { QEma = true }, plain with { OutControl = true }, plain with { QEma = true, OutControl = true } })
                yield return From(options);
            foreach (var options in new[] { plain with { Fp8Gemm = true }, plain with { QEma = true, Fp8Gemm = true } })
                if (From(options) is { Fp8: true } fp8) yield return fp8;
        }
    }
}
