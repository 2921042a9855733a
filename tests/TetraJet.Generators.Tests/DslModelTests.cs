using TetraJet.Generators.Tests.Models;
using TetraJet.Plans;
using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Generators.Tests;

/// <summary>The generated code of this project's DSL models, exercised at run time.</summary>
public class DslModelTests
{
    private static readonly Recipe TetraJetV2OsciReset = Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true };

    [Fact]
    public void Layers_are_registered_under_the_property_names()
    {
        using var model = new DesignMlp();
        Assert.Equal(new[] { "Up", "Down", "Mid", "Head" }, model.named_children().Select(c => c.name));
        Assert.Equal(
            new[] { "Up.weight", "Up.bias", "Down.weight", "Down.bias", "Mid.weight", "Mid.bias", "Head.weight" },
            model.named_parameters().Select(p => p.name).OrderBy(KeyOrder));
        // OsciReset = true on the class: its accumulators travel with the state dict, under the layer's name.
        Assert.Contains("Up.oscireset_dfp", model.state_dict().Keys);
        Assert.Same(model.Up, model.named_children().First().module);

        static int KeyOrder(string key) => Array.IndexOf(new[] { "Up.weight", "Up.bias", "Down.weight", "Down.bias", "Mid.weight", "Mid.bias", "Head.weight" }, key);
    }

    [Fact]
    public void Layers_have_the_declared_sizes_bias_and_names()
    {
        using var model = new DesignMlp();
        Assert.Equal((128, 256), (model.Up.InFeatures, model.Up.OutFeatures));
        Assert.Equal((256, 128), (model.Down.InFeatures, model.Down.OutFeatures));
        Assert.Equal((128, 64), (model.Mid.InFeatures, model.Mid.OutFeatures));
        Assert.Equal((64, 10), (model.Head.InFeatures, model.Head.OutFeatures));
        Assert.Equal(new long[] { 256, 128 }, model.Up.weight.shape);
        Assert.NotNull(model.Up.bias);
        Assert.Null(model.Head.bias);
        Assert.Equal("Up", model.Up.GetName());
    }

    [Fact]
    public void Class_recipe_applies_and_property_recipes_override_it()
    {
        using var model = new DesignMlp();
        Assert.Equal(TetraJetV2OsciReset, model.Up.Recipe);
        Assert.Equal(TetraJetV2OsciReset, model.Down.Recipe);
        Assert.Equal(Recipe.Get(RecipeId.TetraJet) with { QEma = true }, model.Mid.Recipe);
        Assert.Equal(Recipe.Get(RecipeId.BF16), model.Head.Recipe);
        Assert.True(model.Up.Recipe.OsciReset);
        Assert.False(model.Mid.Recipe.OsciReset);
    }

    [Fact]
    public void Layers_run_the_generated_plan_of_their_configuration()
    {
        using var model = new DesignMlp();
        Assert.True(model.Up.Plan.IsGenerated);
        // OsciReset acts on the layer's state, not its dataflow: the plan is TetraJet-v2's own.
        Assert.Equal("Nvfp4_TetraJetV2Plan", model.Up.Plan.GetType().Name);
        Assert.Same(model.Up.Plan, model.Down.Plan);   // one plan per configuration
        Assert.Equal("Mxfp4_TetraJet_QEmaPlan", model.Mid.Plan.GetType().Name);
        Assert.Equal("Bf16Plan", model.Head.Plan.GetType().Name);
        Assert.Equal(PlanKey.Of(TetraJetV2OsciReset), PlanKey.Of(model.Up.Plan.Recipe));
        Assert.Equal(typeof(DesignMlp).Assembly, model.Up.Plan.GetType().Assembly);
    }

    /// <summary>Every named option of [Quantize] is a recipe option of the same name and default (ScaleRule picks a recipe).</summary>
    [Fact]
    public void Quantize_options_are_recipe_options_with_the_same_defaults()
    {
        var attribute = new QuantizeAttribute(RecipeId.TetraJetV2);
        var recipe = Recipe.Get(RecipeId.TetraJetV2);
        var options = typeof(QuantizeAttribute).GetProperties().Where(p => p.CanWrite && p.Name != nameof(QuantizeAttribute.ScaleRule)).ToList();
        Assert.Contains(options, p => p.Name == nameof(Recipe.OsciResetLeanFraction));
        foreach (var option in options)
        {
            var property = typeof(Recipe).GetProperty(option.Name);
            Assert.True(property is not null, $"[Quantize] option {option.Name} is not a Recipe property");
            Assert.Equal(property.GetValue(recipe), option.GetValue(attribute));
        }
    }

    [Fact]
    public void Lean_osci_reset_options_reach_the_layer_and_its_state()
    {
        using var model = new RecipeZoo();
        Assert.Equal(Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true, OsciResetLean = true, OsciResetLeanFraction = 0.05 }, model.Lean.Recipe);
        var state = model.state_dict();
        Assert.Equal(820, state["Lean.oscireset_index"].numel());     // ⌈0.05·128·128⌉ tracked elements
        Assert.Equal(new long[] { 820 }, state["Lean.oscireset_dfp"].shape);
        Assert.DoesNotContain("Outliers.oscireset_index", state.Keys);
    }

    [Fact]
    public void Run_time_recipe_replaces_the_class_recipe_but_not_property_recipes()
    {
        var microscaling = Recipe.Get(RecipeId.Microscaling);
        using var model = new DesignMlp(microscaling);
        Assert.Equal(microscaling, model.Up.Recipe);
        Assert.Equal(microscaling, model.Down.Recipe);
        // The class chooses its recipe at run time, so the compilation generated the named recipes' plans.
        Assert.True(model.Up.Plan.IsGenerated);
        Assert.Equal("Mxfp4_MicroscalingPlan", model.Up.Plan.GetType().Name);
        Assert.Equal(Recipe.Get(RecipeId.TetraJet) with { QEma = true }, model.Mid.Recipe);
        Assert.Equal(Recipe.Get(RecipeId.BF16), model.Head.Recipe);
        Assert.Equal(new[] { "Up", "Down", "Mid", "Head" }, model.named_children().Select(c => c.name));
    }

    [Fact]
    public void Forward_equals_a_hand_built_QLinear_stack_with_the_same_weights()
    {
        manual_seed(1234);
        using var model = new DesignMlp();
        var up = new QLinear(128, 256, TetraJetV2OsciReset, name: "Up");
        var down = new QLinear(256, 128, TetraJetV2OsciReset, name: "Down");
        var mid = new QLinear(128, 64, Recipe.Get(RecipeId.TetraJet) with { QEma = true }, name: "Mid");
        var head = new QLinear(64, 10, Recipe.BF16, bias: false, name: "Head");
        using (no_grad())
        {
            foreach (var (mine, theirs) in new[] { (up, model.Up), (down, model.Down), (mid, model.Mid), (head, model.Head) })
            {
                mine.weight.copy_(theirs.weight);
                if (theirs.bias is not null) mine.bias!.copy_(theirs.bias);
            }
        }

        using var x = randn(8, 128);
        using var expected = head.call(nn.functional.relu(mid.call(down.call(nn.functional.gelu(up.call(x))))));
        using var actual = model.call(x);
        Assert.Equal(new long[] { 8, 10 }, actual.shape);
        Assert.Equal(expected.shape, actual.shape);
        using var same = equal(expected, actual).all();   // element-wise torch.equal: the same bits everywhere
        Assert.True(same.item<bool>(), "generated model and hand-built stack differ");
        using var zero = zeros_like(actual);
        using var allZero = equal(actual, zero).all();
        Assert.False(allZero.item<bool>());
    }

    [Fact]
    public void Member_sizes_are_read_when_the_layers_are_created()
    {
        using var block = new SizedBlock(width: 24, hidden: 40);
        Assert.Equal((24, 40), (block.In.InFeatures, block.In.OutFeatures));
        Assert.Equal((40, 24), (block.Out.InFeatures, block.Out.OutFeatures));
        Assert.Null(block.Out.bias);
        Assert.Equal(Recipe.Get(RecipeId.BF16), block.In.Recipe);   // no [Quantize] anywhere: BF16
        using var y = block.call(ones(3, 24));
        Assert.Equal(new long[] { 3, 24 }, y.shape);
    }

    [Fact]
    public void Member_sizes_are_checked_against_the_block_at_run_time()
    {
        using var ok = new SizedNvfp4(256);
        Assert.Equal((256, 256), (ok.Proj.InFeatures, ok.Proj.OutFeatures));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SizedNvfp4(100));
        Assert.Equal("inFeatures (Width)", error.ParamName);
        Assert.Equal(100, error.ActualValue);
        Assert.Contains("SizedNvfp4.Proj: inFeatures (Width) must be a positive multiple of 128", error.Message);
    }

    [Fact]
    public void A_layer_read_before_InitializeQuantization_names_the_fix()
    {
        using var model = new Uninitialized();
        var error = Assert.Throws<InvalidOperationException>(() => model.Layer);
        Assert.Equal("Uninitialized.Layer is null: call InitializeQuantization() in every constructor of Uninitialized.", error.Message);
        Assert.Empty(model.named_children().Select(c => c.name));
    }

    /// <summary>
    /// The generator's own table of the recipes agrees with the runtime's: every generated plan's recipe and the
    /// quantizers it built (spec, RHT) are the recipe's six slots, and its plan key is the configuration's.
    /// </summary>
    [Fact]
    public void Generated_plans_hold_the_runtime_recipes_slots()
    {
        var plans = typeof(DslModelTests).Assembly.GetTypes()
            .Where(t => typeof(LinearPlan).IsAssignableFrom(t) && !t.IsAbstract)
            .Select(t => (LinearPlan)t.GetField("Instance")!.GetValue(null)!)
            .OrderBy(p => p.GetType().Name, StringComparer.Ordinal)
            .ToList();
        // The declared configurations and, since DesignMlp picks its recipe at run time, every named recipe's.
        Assert.Equal(
            new[] { "Mxfp4_Microscaling", "Mxfp4_TetraJet", "Nvfp4_NvidiaNvfp4", "Nvfp4_TetraJetV2" }
                .SelectMany(r => new[] { r, r + "_QEma", r + "_OutControl", r + "_QEma_OutControl" })
                .Append("Bf16")
                // FP8 GEMMs where the recipe can take them (every slot MXFP4 without RHT)
                .Concat(["Mxfp4_Microscaling_Fp8Gemm", "Mxfp4_Microscaling_QEma_Fp8Gemm", "Mxfp4_TetraJet_Fp8Gemm", "Mxfp4_TetraJet_QEma_Fp8Gemm"])
                // SlotAblation's [QuantizeSlot]s
                .Concat(["Mxfp4_TetraJet_Q3Mxfp4Rtn", "Mxfp4_TetraJet_Q3Mxfp4Rtn_Q5Bf16_Q6Bf16", "Mxfp4_TetraJet_Q3Mxfp8Sr", "Nvfp4_NvidiaNvfp4_Q4Nvfp4PerTensorSr"])
                .Select(n => n + "Plan").OrderBy(n => n, StringComparer.Ordinal),
            plans.Select(p => p.GetType().Name));
        foreach (var plan in plans)
        {
            Assert.True(plan.IsGenerated);
            var recipe = plan.Recipe;
            var named = Recipe.Get(IdOf(recipe));
            if (!plan.GetType().Name.Contains("_Q", StringComparison.Ordinal))   // no [QuantizeSlot]: the named recipe's slots
                Assert.Equal(new[] { named.Q1, named.Q2, named.Q3, named.Q4, named.Q5, named.Q6 }, new[] { recipe.Q1, recipe.Q2, recipe.Q3, recipe.Q4, recipe.Q5, recipe.Q6 });
            Assert.Same(plan, PlanRegistry.Find(recipe));
            var slots = new[] { recipe.Q1, recipe.Q2, recipe.Q3, recipe.Q4, recipe.Q5, recipe.Q6 };
            foreach (var field in plan.GetType().GetFields(System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static))
            {
                if (field.Name.Length < 2 || field.Name[0] != 'Q' || !char.IsDigit(field.Name[1])) continue;
                var slot = slots[field.Name[1] - '1'];
                var value = field.GetValue(null)!;
                var spec = (QuantSpec)value.GetType().GetProperty("Spec")!.GetValue(value)!;
                // FP8 operand handles have no RHT: a configuration with one never takes FP8 GEMMs
                var hadamard = value.GetType().GetProperty("Hadamard") is { } h && (bool)h.GetValue(value)!;
                string what = $"{plan.GetType().Name}.{field.Name}";
                Assert.True(slot.IsQuantized, what + " quantizes a BF16 slot");
                Assert.Equal(slot.Spec with { Rounding = field.Name.Contains("Ema") ? Rounding.EmaGuided : slot.Spec.Rounding }, spec);
                Assert.Equal(slot.Hadamard, hadamard);
            }
        }
    }

    private static RecipeId IdOf(Recipe recipe) => Enum.GetValues<RecipeId>().Single(id => Recipe.Get(id).Name == recipe.Name);
}
