using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary><see cref="TaskTrainer"/> as a data-parallel rank, over in-process ranks (<see cref="FakeGroup"/>).</summary>
public class DataParallelTrainerTests
{
    static readonly Lazy<FashionMnist> Images = new(() => FashionMnist.Load(DataFiles.Shipped("fashion-mnist")).Subset(512, 64));

    static VitTask Task(Recipe recipe)
    {
        manual_seed(0);
        return new VitTask("tiny-cpu", recipe, Images.Value, batch: 32, seed: 0, smoothing: 0.1, Augment.Crop | Augment.Flip);
    }

    static TrainSettings Settings => new() { TotalSteps = 4, PeakLearningRate = 1e-3, WeightDecay = 0.05, CheckWeightsEvery = 2 };

    static (List<StepResult> Steps, List<Tensor> Weights) Train(TaskTrainer trainer, ITrainTask task)
    {
        var steps = Enumerable.Range(0, 4).Select(_ => trainer.TrainStep()).ToList();
        return (steps, task.Net.parameters().Select(p => p.detach().clone()).ToList());
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void One_rank_trains_bit_for_bit_as_the_plain_trainer()
    {
        var recipe = Recipe.Get(RecipeId.TetraJet) with { QEma = true };
        using var plainTask = Task(recipe);
        using var plain = new TaskTrainer(plainTask, Settings, CPU);
        var expected = Train(plain, plainTask);
        using var rankTask = Task(recipe);
        var group = new FakeGroup(1);
        using var ranked = new TaskTrainer(rankTask, Settings, CPU, group.Rank(0));
        var actual = Train(ranked, rankTask);
        Assert.Equal(expected.Steps.Select(s => BitConverter.SingleToInt32Bits(s.Loss)), actual.Steps.Select(s => BitConverter.SingleToInt32Bits(s.Loss)));
        Assert.Equal(expected.Steps.Select(s => s.Correct), actual.Steps.Select(s => s.Correct));
        Assert.All(expected.Weights.Zip(actual.Weights), w => Assert.True(Same(w.First, w.Second)));
    }

    [Fact]
    public void Two_ranks_report_the_whole_batchs_loss_and_count_and_keep_identical_weights()
    {
        var recipe = Recipe.Get(RecipeId.BF16);
        using var plainTask = Task(recipe);
        using var plain = new TaskTrainer(plainTask, Settings, CPU);
        var expected = Train(plain, plainTask);

        var tasks = new[] { Task(recipe), Task(recipe) };
        var group = new FakeGroup(2);
        var trainers = tasks.Select((t, r) => new TaskTrainer(t, Settings, CPU, group.Rank(r))).ToArray();
        var results = group.OnRankThreads(r => Train(trainers[r], tasks[r]));

        // Both ranks see the same numbers: the mean loss of the two halves and the summed correct count.
        Assert.Equal(results[0].Steps.Select(s => s.Loss), results[1].Steps.Select(s => s.Loss));
        Assert.Equal(expected.Steps.Select(s => s.Correct), results[0].Steps.Select(s => s.Correct));
        for (int i = 0; i < 4; i++)
            Assert.True(Math.Abs(expected.Steps[i].Loss - results[0].Steps[i].Loss) < 2e-5, $"step {i + 1}: {expected.Steps[i].Loss} vs {results[0].Steps[i].Loss}");
        for (int i = 0; i < expected.Weights.Count; i++)
        {
            Assert.True(Same(results[0].Weights[i], results[1].Weights[i]), $"parameter {i} differs between the ranks");
            Assert.True((results[0].Weights[i] - expected.Weights[i]).abs().max().item<float>() < 1e-4, $"parameter {i} strays from the one-process run");
        }

        // Rank 0's checkpoint records the two GPUs and resumes in one process with rank 0's weights.
        var header = new CheckpointHeader
        {
            Model = "vit", Size = "tiny-cpu", Recipe = recipe.Name, RecipeDescription = recipe.Describe(), ModelConfig = System.Text.Json.JsonSerializer.Serialize(tasks[0].Config),
            Step = 0, TotalSteps = 4, Seed = 0, Batch = 32, ElapsedSeconds = 0, TrainSeconds = 0, TorchRngState = "",
        };
        var ckpt = trainers[0].Capture(header);
        Assert.Equal(2, ckpt.Header.Gpus);
        Assert.Equal(1, plain.Capture(header).Header.Gpus);
        using var resumedTask = Task(recipe);
        using var resumed = new TaskTrainer(resumedTask, Settings, CPU);
        resumed.Resume(ckpt);
        Assert.Equal(4, resumed.Step);
        Assert.All(resumedTask.Net.parameters().Zip(results[0].Weights), w => Assert.True(Same(w.First, w.Second)));
        foreach (var t in trainers) t.Dispose();
        foreach (var t in tasks) t.Dispose();
    }

    [Fact]
    public void Resuming_on_another_gpu_count_says_so()
    {
        var dir = Path.Combine(CliHarness.TempDir("gpus-resume"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--stop-after", "2")).Code);
        var path = Path.Combine(dir, Checkpoint.FileName);
        var ckpt = Checkpoint.Read(path);
        Assert.Equal(1, ckpt.Header.Gpus);
        new Checkpoint { Header = ckpt.Header with { Gpus = 2 }, ModelState = ckpt.ModelState, OptimizerState = ckpt.OptimizerState, TrackingState = ckpt.TrackingState }.Write(path);
        var (code, stdout, _) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume"));
        Assert.Equal(0, code);
        Assert.Contains("note: the checkpoint was trained on 2 GPU(s) and continues on 1", stdout);
        var (again, quiet, _) = CliHarness.Run(CliHarness.QuickVit(Path.Combine(CliHarness.TempDir("gpus-resume"), "run"), "tetrajet", 2));
        Assert.Equal(0, again);
        Assert.DoesNotContain("note:", quiet);
    }
}
