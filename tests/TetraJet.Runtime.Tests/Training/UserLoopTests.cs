using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Training;

/// <summary>
/// A researcher's own model and loop: two blocks of one class, trained with and without <see cref="QuantizedTraining"/>.
/// The protocol must be right by default (distinct streams), impossible to forget silently (the update check) and
/// resumable from <c>module.save</c>/<c>load</c> alone.
/// </summary>
public class UserLoopTests
{
    const int Width = 128, Hidden = 256;

    /// <summary>Two layers named by property, as the generator names them: both blocks have an "Up" and a "Down".</summary>
    sealed class Block : nn.Module<Tensor, Tensor>
    {
        public readonly QLinear Up, Down;

        public Block(Recipe recipe) : base("Block")
        {
            Up = new QLinear(Width, Hidden, recipe, name: "Up");
            Down = new QLinear(Hidden, Width, recipe, name: "Down");
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + Down.call(nn.functional.gelu(Up.call(x)));
    }

    sealed class TwoBlocks : nn.Module<Tensor, Tensor>
    {
        readonly ModuleList<Block> blocks;
        readonly LayerNorm norm;

        public TwoBlocks(Recipe recipe) : base("TwoBlocks")
        {
            blocks = nn.ModuleList(new Block(recipe), new Block(recipe));
            norm = nn.LayerNorm(Width);
            RegisterComponents();
        }

        public Block this[int i] => blocks[i];

        public override Tensor forward(Tensor x)
        {
            foreach (var b in blocks) x = b.call(x);
            return norm.call(x);
        }
    }

    static TwoBlocks Model(Recipe recipe, int seed = 1)
    {
        manual_seed(seed);
        return new TwoBlocks(recipe);
    }

    /// <summary>The batch of step s: a pure function of s, as a data loader with a fixed order gives.</summary>
    static (Tensor X, Tensor Y) Batch(long step)
    {
        var g = new Generator((ulong)step + 100);
        var x = randn(32, Width, generator: g);
        return (x, x.flip(1) * 0.5f);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static Tensor Loss(nn.Module<Tensor, Tensor> model, long step)
    {
        var (x, y) = Batch(step);
        return nn.functional.mse_loss(model.call(x), y);
    }

    static Recipe QEma => Recipe.Get(RecipeId.TetraJet) with { QEma = true, EmaDecay = 0.9 };
    static Recipe OsciReset => Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 4, OsciResetWindow = 2 };
    static Recipe OutControl => Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 0, OutControlWindow = 2 };
    static Recipe QRamping => Recipe.Get(RecipeId.TetraJet) with { QRamping = true };

    [Fact]
    public void Two_blocks_of_one_class_draw_different_streams_without_any_call()
    {
        using var model = Model(Recipe.TetraJet);
        var ids = model.QuantizedLinears().Select(l => l.Layer.LayerId).ToList();
        Assert.Equal(4, ids.Distinct().Count());

        // Same weights, input and output gradient in both blocks' Up: only the streams can make the SR gradients differ.
        Block a = model[0], b = model[1];
        using (no_grad()) b.Up.weight.copy_(a.Up.weight);
        var x = randn(64, Width);
        var dy = randn(64, Hidden);
        a.Up.call(x).backward([dy]);
        b.Up.call(x).backward([dy]);
        Assert.Equal(a.Up.Step, b.Up.Step);
        Assert.False(Same(a.Up.weight.grad!, b.Up.weight.grad!), "two blocks drew the same stochastic rounding");

        // Reproducible: the same seed builds the same ids.
        using var again = Model(Recipe.TetraJet);
        Assert.Equal(ids, again.QuantizedLinears().Select(l => l.Layer.LayerId));
        using var other = Model(Recipe.TetraJet, seed: 2);
        Assert.NotEqual(ids, other.QuantizedLinears().Select(l => l.Layer.LayerId));
    }

    [Fact]
    public void Colliding_ids_are_made_distinct_deterministically()
    {
        using var model = Model(Recipe.TetraJet);
        using var twin = Model(Recipe.TetraJet);
        foreach (var m in new[] { model, twin })
            foreach (var (_, l) in m.QuantizedLinears()) l.LayerId = 12345;   // e.g. layers created with identical weights
        var changed = model.MakeLayerIdsDistinct();
        twin.MakeLayerIdsDistinct();
        Assert.Equal(new[] { "blocks.0.Down", "blocks.1.Up", "blocks.1.Down" }, changed);
        var ids = model.QuantizedLinears().Select(l => l.Layer.LayerId).ToList();
        Assert.Equal(4, ids.Distinct().Count());
        Assert.Equal(12345, ids[0]);
        Assert.Equal(ids, twin.QuantizedLinears().Select(l => l.Layer.LayerId));
    }

    public static TheoryData<string> Options() => ["Q-EMA", "OsciReset", "OutControl", "Q-Ramping"];

    static Recipe RecipeWith(string option) => option switch
    {
        "Q-EMA" => QEma,
        "OsciReset" => OsciReset,
        "OutControl" => OutControl,
        _ => QRamping,
    };

    [Theory]
    [MemberData(nameof(Options))]
    public void A_plain_optimizer_loop_stops_at_the_second_step_naming_the_fix(string option)
    {
        using var model = Model(RecipeWith(option));
        using var opt = optim.AdamW(model.parameters(), lr: 1e-3);
        opt.zero_grad();
        Loss(model, 0).backward();
        opt.step();
        opt.zero_grad();
        var e = Assert.Throws<InvalidOperationException>(() => Loss(model, 1));
        Assert.Contains("QuantizedTraining", e.Message);
        Assert.Contains(option, e.Message);
        Assert.StartsWith("Up:", e.Message);
    }

    [Fact]
    public void Gradient_accumulation_is_not_taken_for_a_forgotten_update()
    {
        using var model = Model(QEma);
        using var training = new QuantizedTraining(model, new() { TotalSteps = 4 });
        for (int step = 0; step < 4; step++)
        {
            training.ZeroGrad();
            for (int micro = 0; micro < 3; micro++) (Loss(model, 3 * step + micro) / 3).backward();   // three forwards per step
            training.Step();
        }
        Assert.All(model.QuantizedLinears(), l => Assert.Equal(4, l.Layer.EmaSteps));
        Assert.All(model.QuantizedLinears(), l => Assert.Equal(12, l.Layer.Step));
        Assert.Equal(4, training.CompletedSteps);
    }

    [Fact]
    public void Manual_updates_satisfy_the_check_as_before()
    {
        using var model = Model(OsciReset);
        using var opt = optim.AdamW(model.parameters(), lr: 1e-3);
        for (int step = 1; step <= 3; step++)
        {
            opt.zero_grad();
            Loss(model, step).backward();
            opt.step();
            model.UpdateQuantizationState(step, 3);
        }
        Assert.All(model.QuantizedLinears(), l => Assert.Equal(3, l.Layer.OptimizerSteps));
    }

    [Fact]
    public void Weight_decay_is_adamw_s_own_and_spares_vectors()
    {
        using var model = Model(Recipe.BF16);
        using var training = new QuantizedTraining(model, new() { TotalSteps = 1, LearningRate = 0.1, WeightDecay = 0.5 });
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        training.ZeroGrad();
        foreach (var p in model.parameters()) p.grad = zeros_like(p);   // zero gradients: only the decay moves anything
        training.Step();
        foreach (var (name, p) in model.named_parameters())
        {
            var expected = p.dim() >= 2 ? before[name] * (float)(1 - 0.1 * 0.5) : before[name];
            Assert.True(Same(p.detach(), expected), $"{name}: decay {(p.dim() >= 2 ? "not applied" : "applied to a vector")}");
        }
    }

    public static TheoryData<string> Resumable() => ["Q-EMA", "OsciReset", "Q-Ramping"];

    /// <summary>Runs steps [from, to) of a user loop; Q-Ramping calibrates every 4 steps on the next batches.</summary>
    static List<float> Train(TwoBlocks model, QuantizedTraining training, long from, long to)
    {
        var losses = new List<float>();
        for (long step = from; step < to; step++)
        {
            using var scope = NewDisposeScope();
            long k = 0;
            if (training.CalibrationDue) training.Calibrate(() => Loss(model, 1000 + step + k++));
            training.ZeroGrad();
            var loss = Loss(model, step);
            losses.Add(loss.item<float>());
            loss.backward();
            training.Step();
        }
        return losses;
    }

    static QuantizedTrainingOptions Options8 => new()
    {
        TotalSteps = 8, LearningRateAt = QuantizedTrainingOptions.WarmupCosine(3e-3, 2, 8), WeightDecay = 0.05, ClipGradNorm = 1, StepsPerEpoch = 4,
    };

    [Theory]
    [MemberData(nameof(Resumable))]
    public void Module_save_and_load_resume_bit_exactly(string option)
    {
        var recipe = RecipeWith(option);
        using var straight = Model(recipe);
        using var straightTraining = new QuantizedTraining(straight, Options8);
        var straightLosses = Train(straight, straightTraining, 0, 8);

        using var first = Model(recipe);
        using var firstTraining = new QuantizedTraining(first, Options8);
        var losses = Train(first, firstTraining, 0, 4);
        var modelBytes = new MemoryStream();
        first.save(modelBytes);
        var optimizerBytes = new MemoryStream();
        firstTraining.SaveOptimizer(new BinaryWriter(optimizerBytes));

        // Another "process": another seed, so other initial weights and layer ids, until load restores the saved ones.
        using var resumed = Model(recipe, seed: 99);
        resumed.load(new MemoryStream(modelBytes.ToArray()));
        using var resumedTraining = new QuantizedTraining(resumed, Options8);
        resumedTraining.LoadOptimizer(new BinaryReader(new MemoryStream(optimizerBytes.ToArray())));
        Assert.Equal(4, resumedTraining.CompletedSteps);
        losses.AddRange(Train(resumed, resumedTraining, 4, 8));

        Assert.Equal(straightLosses, losses);
        var a = straight.state_dict();
        var b = resumed.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (key, value) in a) Assert.True(Same(value, b[key]), $"{key} differs");
        Assert.Contains("blocks.1.Up." + QLinear.CountersName, a.Keys);
        if (option == "Q-EMA") Assert.All(resumed.QuantizedLinears(), l => Assert.Equal(8, l.Layer.EmaSteps));
    }

    [Fact]
    public void Counters_travel_in_the_state_dict()
    {
        using var model = Model(QEma);
        using var training = new QuantizedTraining(model, new() { TotalSteps = 10 });
        Train(model, training, 0, 3);
        var saved = new MemoryStream();
        model.save(saved);
        using var copy = Model(QEma, seed: 5);
        copy.load(new MemoryStream(saved.ToArray()));
        foreach (var ((_, x), (_, y)) in model.QuantizedLinears().Zip(copy.QuantizedLinears()))
        {
            Assert.Equal((x.LayerId, x.Seed, x.Step, x.OptimizerSteps, x.EmaSteps), (y.LayerId, y.Seed, y.Step, y.OptimizerSteps, y.EmaSteps));
            Assert.Equal(3, y.OptimizerSteps);
        }
    }

    [Fact]
    public void Counters_are_in_the_state_dict_of_any_container_and_stay_int64_on_the_cpu()
    {
        manual_seed(4);
        using var seq = nn.Sequential(("up", new QLinear(Width, Hidden, QEma, name: "up")), ("act", nn.GELU()), ("down", new QLinear(Hidden, Width, QEma, name: "down")));
        var keys = seq.state_dict().Keys.ToList();
        Assert.Contains("up." + QLinear.CountersName, keys);
        Assert.Contains("down." + QLinear.CountersName, keys);
        seq.to(ScalarType.BFloat16);
        var counters = seq.state_dict()["up." + QLinear.CountersName];
        Assert.Equal(ScalarType.Int64, counters.dtype);
        Assert.Equal(DeviceType.CPU, counters.device_type);
        Assert.Equal(ScalarType.BFloat16, seq.state_dict()["up.weight"].dtype);
        // Loaded through the container, the counters reach the layers.
        using var other = nn.Sequential(("up", new QLinear(Width, Hidden, QEma, name: "up")), ("act", nn.GELU()), ("down", new QLinear(Hidden, Width, QEma, name: "down")));
        other.to(ScalarType.BFloat16);
        var up = (QLinear)seq.named_modules().Single(m => m.name == "up").module;
        up.Step = 17;
        var saved = new MemoryStream();
        seq.save(saved);
        other.load(new MemoryStream(saved.ToArray()));
        var otherUp = (QLinear)other.named_modules().Single(m => m.name == "up").module;
        Assert.Equal((up.LayerId, 17L), (otherUp.LayerId, otherUp.Step));
    }

    [Fact]
    public void Q_ramping_asks_for_its_calibration_at_every_epoch()
    {
        using var model = Model(QRamping);
        Assert.Throws<ArgumentException>(() => new QuantizedTraining(model, new() { TotalSteps = 8 }));
        using var training = new QuantizedTraining(model, new() { TotalSteps = 8, StepsPerEpoch = 3 });
        Assert.True(training.UsesQRamping);
        Assert.True(training.CalibrationDue);
        training.ZeroGrad();
        Loss(model, 0).backward();
        var e = Assert.Throws<InvalidOperationException>(() => training.Step());
        Assert.Contains("Calibrate", e.Message);

        var due = new List<long>();
        for (long step = 0; step < 8; step++)
        {
            long k = 0;
            if (training.CalibrationDue) { due.Add(step); training.Calibrate(() => Loss(model, 50 + step + k++)); }
            Assert.False(training.CalibrationDue);
            training.ZeroGrad();
            Loss(model, step).backward();
            training.Step();
        }
        Assert.Equal(new[] { 0L, 3L, 6L }, due);
        Assert.All(model.QuantizedLinears(), l => Assert.Equal(6, l.Layer.CalibratedAtStep));
    }
}
