using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TetraJet.Plans;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TetraJet.Quantization.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary>
/// The plans the generator wrote for the shipped models: the models' layers run them for every recipe and option the
/// trainer offers, each equals the unspecialised plan and the scalar reference bit for bit, and each kernel entry point
/// it emitted computes the reference's bits on ILGPU's CPU accelerator.
/// </summary>
public sealed class GeneratedPlanTests : IDisposable
{
    readonly Context context = Context.Create(b => b.CPU(new CPUDevice(32, 4, 1)));
    readonly Accelerator accelerator;

    public GeneratedPlanTests() => accelerator = context.CreateCPUAccelerator(0);

    public void Dispose()
    {
        accelerator.Dispose();
        context.Dispose();
    }

    static IReadOnlyList<LinearPlan> Plans() => typeof(Vit).Assembly.GetTypes()
        .Where(t => typeof(LinearPlan).IsAssignableFrom(t) && !t.IsAbstract)
        .Select(t => (LinearPlan)t.GetField("Instance")!.GetValue(null)!)
        .OrderBy(p => p.GetType().Name, StringComparer.Ordinal)
        .ToList();

    public static TheoryData<string> PlanNames()
    {
        var data = new TheoryData<string>();
        foreach (var p in Plans()) data.Add(p.GetType().Name);
        return data;
    }

    static LinearPlan Plan(string name) => Plans().Single(p => p.GetType().Name == name);

    /// <summary>Every recipe and option combination the trainer's flags can build.</summary>
    static IEnumerable<Recipe> CliRecipes()
    {
        foreach (var name in new[] { "bf16", "microscaling", "tetrajet", "nvidia-nvfp4", "tetrajet-v2" })
        {
            var r = Recipe.Parse(name);
            yield return r;
            yield return r with { QEma = true };
            yield return r with { QRamping = true };
            yield return r with { OsciReset = true };
            yield return r with { OsciReset = true, OsciResetLean = true };
            yield return r with { OutControl = true };
            yield return r with { QEma = true, OutControl = true };
        }
    }

    [Fact]
    public void Shipped_models_run_generated_plans_for_every_recipe_and_option_of_the_trainer()
    {
        var notices = new List<string>();
        var sink = Notices.Sink;
        Notices.Sink = notices.Add;
        try
        {
            foreach (var recipe in CliRecipes())
            {
                using var vit = new Vit(VitConfig.Get("tiny-cpu"), recipe);
                using var gpt = new Gpt(GptConfig.Get("tiny-cpu"), recipe);
                var layers = vit.QuantizedLinears.Concat(gpt.QuantizedLinears).ToList();
                Assert.NotEmpty(layers);
                foreach (var layer in layers)
                {
                    Assert.True(layer.Plan.IsGenerated, $"{recipe.Name} {layer.GetName()}: {layer.Plan}");
                    Assert.Equal(typeof(Vit).Assembly, layer.Plan.GetType().Assembly);
                    Assert.Equal(PlanKey.Of(layer.Recipe), PlanKey.Of(layer.Plan.Recipe));
                }
                using var x = randn(2, 1, 28, 28);
                using var _ = vit.call(x);
            }
            Assert.Empty(notices);
        }
        finally { Notices.Sink = sink; }
    }

    [Fact]
    public void A_recipe_built_at_run_time_runs_the_unspecialised_plan_and_says_so_once()
    {
        var notices = new List<string>();
        var sink = Notices.Sink;
        Notices.Sink = notices.Add;
        try
        {
            // MXFP8 in the dgrad pair, which no recipe of the shipped models has.
            var recipe = Recipe.Get(RecipeId.TetraJetV2).WithSlot(Slot.Q3, Format.MXFP8, hadamard: false).WithSlot(Slot.Q4, Format.MXFP8, hadamard: false) with { Name = "mxfp8-dgrad" };
            var a = new QLinear(128, 128, recipe);
            var b = new QLinear(128, 128, recipe);
            Assert.False(a.Plan.IsGenerated);
            Assert.Same(a.Plan, b.Plan);
            Assert.Empty(notices);                    // building says nothing; the first use does
            using var x = randn(4, 128);
            a.call(x).Dispose();
            b.call(x).Dispose();
            Assert.Single(notices);
            Assert.Contains("mxfp8-dgrad", notices[0]);
            Assert.Contains("unspecialised plan", notices[0]);
        }
        finally { Notices.Sink = sink; }
    }

    /// <summary>One forward and backward; QEma warmed up and OutControl's channels fixed first where the plan has them.</summary>
    static Tensor[] Run(LinearPlan plan, bool dynamic, bool reference, ScalarType dtype)
    {
        var recipe = plan.Recipe with { OutControlStart = 0, OutControlWindow = 1 };
        int k = Math.Max(recipe.FeatureMultiple, 32) * 2, n = Math.Max(recipe.FeatureMultiple, 32) * 3;
        manual_seed(12);
        var layer = new QLinear(k, n, recipe, name: "probe", plan: dynamic ? new DynamicPlan(recipe) : plan) { Seed = 9, LayerId = 4 };
        if (reference) layer.Backend = QuantBackend.Reference;
        layer.to(dtype);
        var x = randn(37, k).mul(tensor(Enumerable.Range(0, k).Select(i => i % 17 == 0 ? 30f : 1f).ToArray())).to(dtype);
        if (recipe.QEma || recipe.OutControl)
            for (int step = 1; step <= QLinear.EmaWarmupSteps; step++)
            {
                if (recipe.OutControl && step == 1) layer.call(x).Dispose();   // the window's one forward
                layer.UpdateQuantizationState(step, 100);
            }
        var xl = x.clone().requires_grad_();
        var y = layer.call(xl);
        y.backward([randn(37, n).to(dtype)]);
        return [y.detach(), xl.grad!, layer.weight.grad!, layer.bias!.grad!];
    }

    [Theory]
    [MemberData(nameof(PlanNames))]
    public void Generated_plan_equals_the_unspecialised_plan_and_the_reference_bit_for_bit(string name)
    {
        var plan = Plan(name);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var generated = Run(plan, dynamic: false, reference: false, dtype);
            var unspecialised = Run(plan, dynamic: true, reference: false, dtype);
            var reference = Run(plan, dynamic: false, reference: true, dtype);
            string[] what = ["Y", "dX", "dW", "db"];
            for (int i = 0; i < generated.Length; i++)
            {
                Assert.True(Same(generated[i], unspecialised[i]), $"{name} {dtype} {what[i]}: generated ≠ unspecialised");
                Assert.True(Same(generated[i], reference[i]), $"{name} {dtype} {what[i]}: generated ≠ reference");
            }
        }
    }

    /// <summary>Bit equality of two tensors (any NaN matches any NaN; zeros must agree in sign).</summary>
    static bool Same(Tensor a, Tensor b)
    {
        var x = a.to(ScalarType.Float32); var y = b.to(ScalarType.Float32);
        return x.eq(y).logical_and(x.signbit().eq(y.signbit())).logical_or(x.isnan().logical_and(y.isnan())).all().item<bool>();
    }

    static float[] Data(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, rows * cols).Select(i => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, i / 32 % 9 - 4))).ToArray();
    }

    static float[] Reference(float[] x, int rows, int cols, BlockAxis axis, QuantSpec spec, bool hadamard, uint signs, float[]? ema)
    {
        var input = (float[])x.Clone();
        if (hadamard) Hadamard.Apply(input, rows, cols, axis, signs);
        var y = new float[x.Length];
        ReferenceQuantizer.Quantize(input, y, rows, cols, axis, spec, 3, 4, ema, padBlockAxis: axis == BlockAxis.First);
        return y;
    }

    static void AssertBits(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]) && !(float.IsNaN(expected[i]) && float.IsNaN(actual[i])))
                Assert.Fail($"{what}: element {i} expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [MemberData(nameof(PlanNames))]
    public void Every_emitted_kernel_entry_point_computes_the_references_bits(string name)
    {
        var plan = Plan(name);
        const uint signs = 0xB4D2;
        int checkedKernels = 0;
        foreach (var field in plan.GetType().GetFields(BindingFlags.NonPublic | BindingFlags.Static))
        {
            string what = $"{name}.{field.Name}";
            switch (field.GetValue(null))
            {
                case RowQuantizer q:
                {
                    int rows = q.Spec.Tile16 ? 32 : 5, cols = Math.Max(q.Spec.FeatureMultiple, 32) * 3;
                    var x = Data(rows, cols, field.Name.Length);
                    var ema = q.Spec.Rounding == Rounding.EmaGuided ? x.Select(v => v * 1.05f).ToArray() : null;
                    var expected = Reference(x, rows, cols, BlockAxis.Last, q.Spec, q.Hadamard, signs, ema);
                    var actual = q.Stores ? GpuQuantizer.Store(accelerator, q, x, rows, cols, 3, 4, ema).Quantized
                        : GpuQuantizer.Run(accelerator, q, x, rows, cols, 3, 4, signs, ema);
                    AssertBits(expected, actual, what);
                    break;
                }
                case ColumnQuantizer q:
                {
                    int rows = 48, cols = 40;
                    var x = Data(rows, cols, field.Name.Length);
                    AssertBits(Reference(x, rows, cols, BlockAxis.First, q.Spec, q.Hadamard, signs, null),
                        GpuQuantizer.Run(accelerator, q, x, rows, cols, 3, 4, signs), what);
                    break;
                }
                case StoredColumnQuantizer q:
                {
                    int rows = 48, sourceRows = 37, cols = q.Source.FeatureMultiple * 2;
                    var x = Data(sourceRows, cols, field.Name.Length);
                    using var stored = Quantizer.QuantizePacked(tensor(x, sourceRows, cols), q.Source);
                    var padded = new float[rows * cols];
                    var values = new float[x.Length];
                    stored.Dequantize(values);
                    Array.Copy(values, padded, values.Length);
                    AssertBits(Reference(padded, rows, cols, BlockAxis.First, q.Spec, q.Hadamard, signs, null),
                        GpuQuantizer.QuantizeFromStored(accelerator, q, stored.Codes.data<byte>().ToArray(), stored.Scales.data<byte>().ToArray(),
                            stored.OuterScales.data<float>().ToArray(), rows, cols, sourceRows, 3, 4, signs), what);
                    break;
                }
                case DualQuantizer q:
                {
                    int rows = 48, cols = q.Spec.FeatureMultiple * 3;
                    var x = Data(rows, cols, field.Name.Length);
                    var y3 = new float[x.Length];
                    var y5 = new float[x.Length];
                    GpuQuantizer.QuantizeDual(accelerator, q, x, y3, y5, rows, cols, 3, 4, 4, signs, signs);
                    AssertBits(Reference(x, rows, cols, BlockAxis.Last, q.Spec, q.Hadamard, signs, null), y3, what + " Q3");
                    AssertBits(Reference(x, rows, cols, BlockAxis.First, q.Spec, q.Hadamard, signs, null), y5, what + " Q5");
                    break;
                }
                default:
                    continue;
            }
            checkedKernels++;
        }
        Assert.True(checkedKernels > 0 || name == "Bf16Plan", $"{name}: no quantizer handles found");
    }
}
