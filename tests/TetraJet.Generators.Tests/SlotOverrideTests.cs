using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using TetraJet.Generators.Tests.Models;
using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Generators.Tests;

/// <summary>
/// <c>[QuantizeSlot]</c>: the generator's mirror of <see cref="Recipe.WithSlot"/> against the runtime, the configurations
/// it yields, and a model that uses it, built and trained.
/// </summary>
public class SlotOverrideTests
{
    // ---- The generator's mirror of the runtime ----

    [Fact]
    public void Mirrored_enums_match_the_runtime_by_name_and_value()
    {
        static void Same<TMirror, TRuntime>() where TMirror : struct, Enum where TRuntime : struct, Enum
        {
            Assert.Equal(Enum.GetNames<TRuntime>(), Enum.GetNames<TMirror>());
            Assert.Equal(Enum.GetValues<TRuntime>().Select(v => Convert.ToInt32(v)), Enum.GetValues<TMirror>().Select(v => Convert.ToInt32(v)));
        }
        Same<RecipeKind, RecipeId>();
        Same<FormatKind, Format>();
        Same<RoundingKind, Rounding>();
        Same<ScaleRuleKind, ScaleRule>();
        Same<SourceKind, SlotSource>();
        Same<GemmKind, GemmPath>();
        Assert.Equal(Enumerable.Range(1, 6), Enum.GetValues<Slot>().Select(s => (int)s));   // Slot.Qn = n, index n − 1 in the generator
    }

    [Fact]
    public void Recipe_table_matches_the_runtime_recipes_slot_by_slot()
    {
        foreach (var id in Enum.GetValues<RecipeId>())
        {
            var recipe = Recipe.Get(id);
            var slots = RecipeTable.Slots((RecipeKind)id);
            for (var i = 0; i < 6; i++) Assert.Equal(Mirror(recipe.GetSlot((Slot)(i + 1))), slots[i]);
            Assert.Equal(recipe.FeatureMultiple, ConfigSpec.Plain((RecipeKind)id).FeatureMultiple);
        }
    }

    public static IEnumerable<object?[]> EveryOverride()
    {
        foreach (var id in Enum.GetValues<RecipeId>())
            foreach (var slot in Enum.GetValues<Slot>())
                foreach (var format in Enum.GetValues<Format>())
                    foreach (var rounding in new Rounding?[] { null, Rounding.Nearest, Rounding.Stochastic })
                        foreach (var hadamard in new bool?[] { null, false, true })
                            foreach (var rule in new ScaleRule?[] { null, ScaleRule.TetraJet, ScaleRule.Ocp })
                                yield return new object?[] { id, slot, format, rounding, hadamard, rule };
    }

    /// <summary>
    /// Every override of every slot of every recipe (4,050): the generator's effective slot, feature multiple and
    /// "overridden" flag equal the runtime's; the generator's fully spelled-out call builds the same recipe as the
    /// call as written; equal recipes get equal configuration names and different ones different names.
    /// </summary>
    [Fact]
    public void Generator_overrides_equal_Recipe_WithSlot_for_every_combination()
    {
        var names = new Dictionary<string, Recipe>(StringComparer.Ordinal);
        var checkedCount = 0;
        foreach (var row in EveryOverride())
        {
            var (id, slot, format, rounding, hadamard, rule) = ((RecipeId)row[0]!, (Slot)row[1]!, (Format)row[2]!, (Rounding?)row[3], (bool?)row[4], (ScaleRule?)row[5]);
            Recipe runtime;
            try
            {
                runtime = Recipe.Get(id).WithSlot(slot, format, rounding, hadamard, rule);
            }
            catch (ArgumentException)
            {
                // Only a transform on a quantized Q1/Q2 is refused here (TJ1021 at compile time).
                Assert.True(hadamard == true && slot <= Slot.Q2 && format != Format.BF16, $"{id} {slot} {format} threw");
                continue;
            }
            var index = (int)slot - 1;
            var o = new SlotOverrideSpec(index, (FormatKind)format, (RoundingKind?)rounding, hadamard, (ScaleRuleKind?)rule);
            var config = ConfigSpec.Plain((RecipeKind)id).WithOverrides(new[] { o });
            var context = $"{id} {slot} {format} {rounding} {hadamard} {rule}";

            for (var i = 0; i < 6; i++) Assert.True(Mirror(runtime.GetSlot((Slot)(i + 1))) == config.Slots[i], context + $": Q{i + 1}");
            Assert.True(runtime.FeatureMultiple == config.FeatureMultiple, context);
            Assert.True(runtime.IsOverridden(slot) == config.IsOverridden(index), context);

            var effective = config.Slots[index];
            var spelledOut = Recipe.Get(id).WithSlot(slot, format, (Rounding)effective.Rounding, effective.Hadamard, (ScaleRule)effective.ScaleRule);
            Assert.True(runtime == spelledOut, context);
            Assert.Equal(config.IsOverridden(index) ? 1 : 0, config.OverrideCalls.Count);

            if (names.TryGetValue(config.Name, out var seen)) Assert.True(seen == runtime, context + ": name " + config.Name + " taken by another recipe");
            else names[config.Name] = runtime;
            checkedCount++;
        }
        Assert.Equal(names.Count, names.Values.Distinct().Count());   // different recipes, different names
        Assert.True(checkedCount > 3500, $"{checkedCount} combinations checked");
    }

    [Theory]
    [InlineData(RecipeId.TetraJet, Slot.Q3, Format.MXFP4, Rounding.Nearest, null, "Mxfp4_TetraJet_Q3Mxfp4Rtn", "TetraJet MXFP4, Q3 MXFP4 RTN")]
    [InlineData(RecipeId.TetraJetV2, Slot.Q5, Format.BF16, null, null, "Nvfp4_TetraJetV2_Q5Bf16", "TetraJet-v2 NVFP4, Q5 BF16")]
    [InlineData(RecipeId.BF16, Slot.Q1, Format.MXFP8, null, null, "Bf16_Q1Mxfp8Rtn", "BF16, Q1 MXFP8 RTN")]
    [InlineData(RecipeId.NvidiaNvfp4, Slot.Q4, Format.NVFP4PerTensor, null, null, "Nvfp4_NvidiaNvfp4_Q4Nvfp4PerTensorRtn", "NVIDIA NVFP4, Q4 NVFP4PerTensor RTN")]
    [InlineData(RecipeId.TetraJetV2, Slot.Q3, Format.NVFP4, null, false, "Nvfp4_TetraJetV2_Q3Nvfp4Sr", "TetraJet-v2 NVFP4, Q3 NVFP4 SR")]
    [InlineData(RecipeId.TetraJetV2, Slot.Q3, Format.NVFP4, null, true, "Nvfp4_TetraJetV2", "TetraJet-v2 NVFP4")]
    public void Configurations_that_differ_in_a_slot_have_readable_distinct_names(
        RecipeId recipe, Slot slot, Format format, Rounding? rounding, bool? hadamard, string name, string description)
    {
        var o = new SlotOverrideSpec((int)slot - 1, (FormatKind)format, (RoundingKind?)rounding, hadamard, null);
        var config = ConfigSpec.Plain((RecipeKind)recipe).WithOverrides(new[] { o });
        Assert.Equal(name, config.Name);
        Assert.Equal(description, config.Description);
        Assert.True(Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(config.Name + "Config"));
    }

    static SlotSpec Mirror(QuantizerSlot s) => new(
        s.Spec.Format switch
        {
            QuantFormat.MXFP4 => FormatKind.MXFP4,
            QuantFormat.NVFP4 => FormatKind.NVFP4,
            QuantFormat.NVFP4Tensor => FormatKind.NVFP4PerTensor,
            QuantFormat.MXFP8 => FormatKind.MXFP8,
            _ => FormatKind.BF16,
        },
        (ScaleRuleKind)s.Spec.ScaleRule, (RoundingKind)s.Spec.Rounding, s.Hadamard, (SourceKind)s.Source, s.Spec.Tile16);

    // ---- The DSL, compiled ----

    /// <summary>The example needs no using but <c>using TetraJet;</c> (TorchSharp is spelled out), and runs.</summary>
    [Fact]
    public void The_example_compiles_with_using_TetraJet_alone_and_runs_its_override()
    {
        var result = GeneratorHarness.Run("""
            using TetraJet;

            namespace Demo;

            [Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q3, Format.MXFP4, Rounding = Rounding.Nearest)]
            public sealed partial class Probe : TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>
            {
                [Linear(64, 64)] public partial QLinear Proj { get; }
                public Probe() : base(nameof(Probe)) { InitializeQuantization(); RegisterComponents(); }
                public override TorchSharp.torch.Tensor forward(TorchSharp.torch.Tensor x) => Proj.call(x);
            }
            """);
        Assert.Empty(result.CompilerDiagnostics);
        var warning = Assert.Single(result.AnalyzerDiagnostics);   // the nearest-rounding Q3 is the point of this ablation
        Assert.Equal(("TJ1017", DiagnosticSeverity.Error), (warning.Id, warning.Severity));   // a warning, promoted like all warnings here

        using var stream = new MemoryStream();
        Assert.True(result.Output.Emit(stream).Success);
        var context = new AssemblyLoadContext("slots", isCollectible: true);
        try
        {
            stream.Position = 0;
            var type = context.LoadFromStream(stream).GetType("Demo.Probe")!;
            using var model = (TorchSharp.torch.nn.Module<Tensor, Tensor>)Activator.CreateInstance(type)!;
            var proj = (QLinear)type.GetProperty("Proj")!.GetValue(model)!;
            Assert.Equal(Recipe.Get(RecipeId.TetraJet).WithSlot(Slot.Q3, Format.MXFP4, Rounding.Nearest), proj.Recipe);
            Assert.Equal(new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest), proj.Recipe.Q3.Spec);
            Assert.True(proj.Plan.IsGenerated);
            Assert.Equal("Mxfp4_TetraJet_Q3Mxfp4RtnPlan", proj.Plan.GetType().Name);
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>What the attributes say, applied with the runtime API alone: the recipe each generated layer must have.</summary>
    static Recipe Expected(string property, Recipe? runTime = null)
    {
        var type = typeof(SlotAblation);
        var p = type.GetProperty(property)!;
        var own = p.GetCustomAttribute<QuantizeAttribute>();
        var recipe = own is not null ? Recipe.Get(own.Recipe) : runTime ?? Recipe.Get(type.GetCustomAttribute<QuantizeAttribute>()!.Recipe);
        var slots = p.GetCustomAttributes<QuantizeSlotAttribute>().ToList();
        if (own is null) slots.AddRange(type.GetCustomAttributes<QuantizeSlotAttribute>().Where(c => slots.All(s => s.Slot != c.Slot)));
        foreach (var slot in slots.OrderBy(s => s.Slot)) recipe = slot.ApplyTo(recipe);
        return recipe;
    }

    [Fact]
    public void Generated_layers_have_the_recipes_that_the_attributes_give_through_the_runtime_API()
    {
        using var model = new SlotAblation();
        Assert.Equal(Expected("Up"), model.Up.Recipe);
        Assert.Equal(Expected("Down"), model.Down.Recipe);
        Assert.Equal(Expected("Nvidia"), model.Nvidia.Recipe);
        Assert.Equal(Expected("Head"), model.Head.Recipe);

        // Spelled out: the class's Q3 everywhere but where a layer has its own [Quantize] or its own Q3.
        var tetraJet = Recipe.Get(RecipeId.TetraJet);
        Assert.Equal(tetraJet.WithSlot(Slot.Q3, Format.MXFP4, Rounding.Nearest), model.Up.Recipe);
        Assert.Equal(QuantizerSlot.None with { Source = SlotSource.ForwardDequantized }, model.Down.Recipe.Q6);
        Assert.Equal(new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest), model.Down.Recipe.Q3.Spec);
        Assert.Equal(new QuantizerSlot(new QuantSpec(QuantFormat.NVFP4Tensor, Rounding.Stochastic), SlotSource.ForwardDequantized), model.Nvidia.Recipe.Q4);
        Assert.Equal(Recipe.Get(RecipeId.NvidiaNvfp4).Q3, model.Nvidia.Recipe.Q3);
        Assert.Equal(new QuantSpec(QuantFormat.MXFP8, Rounding.Stochastic), model.Head.Recipe.Q3.Spec);

        // One generated plan each, named for its overrides.
        Assert.Equal(
            new[] { "Mxfp4_TetraJet_Q3Mxfp4RtnPlan", "Mxfp4_TetraJet_Q3Mxfp4Rtn_Q5Bf16_Q6Bf16Plan", "Nvfp4_NvidiaNvfp4_Q4Nvfp4PerTensorSrPlan", "Mxfp4_TetraJet_Q3Mxfp8SrPlan" },
            new[] { model.Up, model.Down, model.Nvidia, model.Head }.Select(l => l.Plan.GetType().Name));
        Assert.All(new[] { model.Up, model.Down, model.Nvidia, model.Head }, l => Assert.True(l.Plan.IsGenerated));
    }

    [Fact]
    public void Describe_shows_the_overridden_slots_of_a_generated_layer()
    {
        using var model = new SlotAblation();
        var text = model.Down.Recipe.Describe();
        Assert.Contains("| Q3 | dY | N | MXFP4 RTN (overridden) |", text);
        Assert.Contains("| Q4 | Ŵ | N | MXFP4 SR (re-quantized) |", text);
        Assert.Contains("| Q5 | dY | T | BF16 (overridden) |", text);
        Assert.Contains("| Q6 | X̂ | T | BF16 (overridden) |", text);
        Assert.Contains("| Q4 | Ŵ | N | NVFP4Tensor SR (re-quantized) (overridden) |", model.Nvidia.Recipe.Describe());
    }

    [Fact]
    public void The_run_time_recipe_overload_applies_the_overrides_over_its_recipe()
    {
        var nvidia = Recipe.Get(RecipeId.NvidiaNvfp4);
        using var model = new SlotAblation(nvidia);
        Assert.Equal(Expected("Up", nvidia), model.Up.Recipe);
        Assert.Equal(nvidia.WithSlot(Slot.Q3, Format.MXFP4, Rounding.Nearest), model.Up.Recipe);
        Assert.Equal(SlotSource.ForwardCodesTransposed, model.Up.Recipe.Q4.Source);   // Q4 not overridden: still the forward codes
        Assert.Equal(Expected("Down", nvidia), model.Down.Recipe);
        Assert.Equal(Expected("Head", nvidia), model.Head.Recipe);
        Assert.Equal(Expected("Nvidia"), model.Nvidia.Recipe);   // its own [Quantize]: untouched
        // NVIDIA's recipe with the class's Q3 override is not a configuration this compilation declares.
        Assert.False(model.Up.Plan.IsGenerated);
    }

    /// <summary>Every layer trains through its overridden slots: a small regression fits.</summary>
    [Fact]
    public void A_model_with_overrides_trains()
    {
        manual_seed(11);
        using var model = new SlotAblation();
        var x = randn(64, 64);
        var target = randn(64, 32) * 0.5;
        var optimizer = optim.Adam(model.parameters(), lr: 1e-2);
        float first = 0, last = 0;
        for (var step = 0; step < 20; step++)
        {
            optimizer.zero_grad();
            using var loss = nn.functional.mse_loss(model.call(x), target);
            loss.backward();
            optimizer.step();
            last = loss.item<float>();
            if (step == 0) first = last;
            Assert.True(float.IsFinite(last), $"step {step}: loss {last}");
        }
        Assert.True(last < 0.3f * first, $"loss {first} → {last}");   // 0.248 → 0.029 when written
        foreach (var layer in new[] { model.Up, model.Down, model.Nvidia, model.Head }) Assert.True(layer.Step > 0);
    }
}
