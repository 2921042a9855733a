using TetraJet.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Distributed;

/// <summary>
/// Data parallelism over in-process ranks (<see cref="FakeGroup"/>): the same code path as NCCL training, with the
/// collectives done in memory.
/// </summary>
public class DataParallelTests
{
    const int Width = 128, Hidden = 256, Rows = 32;

    sealed class Net : nn.Module<Tensor, Tensor>
    {
        readonly QLinear up, down;
        public Net(Recipe recipe) : base("Net")
        {
            up = new QLinear(Width, Hidden, recipe, name: "up");
            down = new QLinear(Hidden, Width, recipe, name: "down");
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => x + down.call(nn.functional.gelu(up.call(x)));
    }

    static Net Model(Recipe recipe)
    {
        manual_seed(1);
        return new Net(recipe);
    }

    static (Tensor X, Tensor Y) Batch(long step)
    {
        var g = new Generator((ulong)step + 100);
        var x = randn(Rows, Width, generator: g);
        return (x, x.flip(1) * 0.5f);
    }

    static QuantizedTrainingOptions Options(DataParallel? parallel) => new() { TotalSteps = 6, LearningRate = 1e-3, DataParallel = parallel, StepsPerEpoch = 3 };

    /// <summary>Trains <paramref name="steps"/> steps on rows [start, start + count) of each batch; returns the weights.</summary>
    static List<Tensor> Train(Net model, DataParallel? parallel, int steps, long start, long count)
    {
        using var training = new QuantizedTraining(model, Options(parallel));
        parallel?.Start();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var (x, y) = Batch(s);
            long k = 0;
            if (training.CalibrationDue)
                training.Calibrate(() =>
                {
                    var (cx, cy) = Batch(100 + s + k++);
                    return nn.functional.mse_loss(model.call(cx.narrow(0, start, count)), cy.narrow(0, start, count));
                });
            training.ZeroGrad();
            nn.functional.mse_loss(model.call(x.narrow(0, start, count)), y.narrow(0, start, count)).backward();
            training.Step();
        }
        return model.parameters().Select(p => p.detach().clone()).ToList();
    }

    static Recipe OutControl => Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 0, OutControlWindow = 2 };

    [Fact]
    public void World_size_one_trains_bit_for_bit_as_one_process()
    {
        var recipe = OutControl with { QEma = true };
        using var plain = Model(recipe);
        var expected = Train(plain, null, 4, 0, Rows);
        using var ranked = Model(recipe);
        var actual = FakeGroup.Run(1, comm => Train(ranked, new DataParallel(ranked, comm), 4, 0, Rows))[0];
        for (int i = 0; i < expected.Count; i++) Assert.True(expected[i].Same(actual[i]), $"parameter {i} differs");
    }

    [Fact]
    public void Two_ranks_on_half_batches_match_one_process_on_the_whole_batch_and_each_other()
    {
        var recipe = Recipe.Get(RecipeId.BF16);
        using var single = Model(recipe);
        var expected = Train(single, null, 4, 0, Rows);
        var models = new[] { Model(recipe), Model(recipe) };
        var ranks = FakeGroup.Run(2, comm => Train(models[comm.Rank], new DataParallel(models[comm.Rank], comm), 4, comm.Rank * Rows / 2, Rows / 2));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.True(ranks[0][i].Same(ranks[1][i]), $"parameter {i} differs between the ranks");
            // The mean of the two half-batch means is the whole batch's mean up to the order of summation.
            double diff = (ranks[0][i] - expected[i]).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"parameter {i}: {diff} from the one-process run");
            Assert.False(ranks[0][i].Same(Model(recipe).parameters().ElementAt(i)), "the weights did not move");
        }
    }

    [Fact]
    public void Ranks_stay_identical_through_Q_Ramping_calibrations_and_Q_EMA_with_OsciReset()
    {
        foreach (var recipe in new[]
        {
            Recipe.Get(RecipeId.TetraJet) with { QRamping = true },
            Recipe.Get(RecipeId.TetraJetV2) with { QEma = true, EmaDecay = 0.9, OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 4, OsciResetWindow = 2 },
        })
        {
            var models = new[] { Model(recipe), Model(recipe) };
            var ranks = FakeGroup.Run(2, comm => Train(models[comm.Rank], new DataParallel(models[comm.Rank], comm) { CheckEvery = 1 }, 5, comm.Rank * Rows / 2, Rows / 2));
            for (int i = 0; i < ranks[0].Count; i++) Assert.True(ranks[0][i].Same(ranks[1][i]), $"{recipe.Describe()}: parameter {i} differs between the ranks");
            var calibrated = models.Select(m => m.QuantizedLinears().Select(l => l.Layer.CalibratedAtStep).ToList()).ToList();
            Assert.Equal(calibrated[0], calibrated[1]);
            if (recipe.QRamping) Assert.All(calibrated[0], c => Assert.Equal(3, c));
            var emas = models.Select(m => m.QuantizedLinears().Select(l => l.Layer.EmaWeight).ToList()).ToList();
            for (int l = 0; l < emas[0].Count; l++)
                if (emas[0][l] is { } e0) Assert.True(e0.Same(emas[1][l]!), "Q-EMA differs between the ranks");
        }
    }

    [Fact]
    public void Quantized_ranks_stay_identical_and_choose_the_same_OutControl_channels_from_summed_norms()
    {
        var models = new[] { Model(OutControl), Model(OutControl) };
        var ranks = FakeGroup.Run(2, comm =>
        {
            var m = models[comm.Rank];
            var parallel = new DataParallel(m, comm) { CheckEvery = 1 };
            var w = Train(m, parallel, 3, comm.Rank * Rows / 2, Rows / 2);
            return w;
        });
        for (int i = 0; i < ranks[0].Count; i++) Assert.True(ranks[0][i].Same(ranks[1][i]), $"parameter {i} differs between the ranks");
        var chosen = models.Select(m => m.QuantizedLinears().Select(l => l.Layer.OutControlChannels).ToList()).ToList();
        Assert.Contains(chosen[0], c => c is not null);
        for (int l = 0; l < chosen[0].Count; l++)
            if (chosen[0][l] is { } c0) Assert.True(c0.Outliers.Same(chosen[1][l]!.Outliers), $"layer {l} chose other channels on rank 1");

        // The sums the choice used are the two ranks' own sums added: rank 0 alone would have seen only its half.
        var solo = Model(OutControl);
        Train(solo, null, 3, 0, Rows / 2);
        var soloNorms = solo.QuantizedLinears().Select(l => l.Layer.get_buffer("outcontrol_norms")).OfType<Tensor>().Single();
        var rankNorms = models[0].QuantizedLinears().Select(l => l.Layer.get_buffer("outcontrol_norms")).OfType<Tensor>().Single();
        Assert.True((rankNorms - soloNorms).min().item<double>() > 0, "the summed norms must exceed one rank's own");
    }

    [Fact]
    public void Different_weights_on_one_rank_fail_the_check_on_every_rank()
    {
        var models = new[] { Model(Recipe.Get(RecipeId.BF16)), Model(Recipe.Get(RecipeId.BF16)) };
        var errors = FakeGroup.Run(2, comm =>
        {
            var parallel = new DataParallel(models[comm.Rank], comm);
            parallel.Start();
            parallel.CheckWeights(0);
            if (comm.Rank == 1) using (no_grad()) models[1].parameters().First().view(-1)[7].add_(1e-6f);
            return Record.Exception(() => parallel.CheckWeights(5));
        });
        foreach (var e in errors)
        {
            var mismatch = Assert.IsType<WeightMismatchException>(e);
            Assert.Equal(5, mismatch.Step);
            Assert.Equal(["up.weight"], mismatch.Parameters);
        }
    }

    [Fact]
    public void Start_gives_every_rank_rank_zeros_weights()
    {
        var recipe = Recipe.Get(RecipeId.BF16);
        var models = new[] { Model(recipe), new Net(recipe) };   // the second from another point of the generator
        Assert.False(models[0].parameters().First().Same(models[1].parameters().First()));
        FakeGroup.Run(2, comm => { new DataParallel(models[comm.Rank], comm).Start(); return 0; });
        foreach (var (a, b) in models[0].parameters().Zip(models[1].parameters())) Assert.True(a.Same(b));
    }
}
