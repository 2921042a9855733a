using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary>
/// <see cref="TaskTrainer.TrainStep"/> on a batch whose loss is not finite: nothing changes, with or without clipping
/// (without it, only the loss check stands between the NaN gradients and the weights).
/// </summary>
public class NonFiniteStepTests
{
    static readonly Lazy<FashionMnist> Images = new(() => FashionMnist.Load(DataFiles.Shipped("fashion-mnist")).Subset(256, 32));

    /// <summary>A task whose batch at <paramref name="BadStep"/> is all NaN.</summary>
    sealed class PoisonedTask(ITrainTask inner, long BadStep) : ITrainTask
    {
        public string ModelName => inner.ModelName;
        public nn.Module<Tensor, Tensor> Net => inner.Net;
        public object Config => inner.Config;
        public string SizeName => inner.SizeName;
        public string Unit => inner.Unit;
        public int StepsPerEpoch => inner.StepsPerEpoch;
        public long ItemsPerStep => inner.ItemsPerStep;
        public double Beta2 => inner.Beta2;
        public bool Decays(string name, Tensor p) => inner.Decays(name, p);
        public (Tensor Input, Tensor Target) Batch(long step)
        {
            var (x, y) = inner.Batch(step);
            return step == BadStep ? (full_like(x, double.NaN), y) : (x, y);
        }
        public (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target) => inner.Loss(output, target);
        public EvalResult Evaluate(Device device) => inner.Evaluate(device);
        public void Dispose() => inner.Dispose();
    }

    [Theory]
    [InlineData(RecipeId.TetraJet, 1.0)]
    [InlineData(RecipeId.TetraJet, 0.0)]
    [InlineData(RecipeId.BF16, 0.0)]
    public void A_non_finite_loss_leaves_weights_optimizer_and_step_as_they_were(RecipeId id, double clip)
    {
        manual_seed(0);
        var recipe = Recipe.Get(id);
        using var task = new PoisonedTask(new VitTask("tiny-cpu", recipe, Images.Value, batch: 16, seed: 0, smoothing: 0.1, Augment.None), BadStep: 1);
        using var trainer = new TaskTrainer(task, new TrainSettings { TotalSteps = 4, PeakLearningRate = 1e-3, ClipNorm = clip }, CPU);
        Assert.True(trainer.TrainStep().Finite);
        var weights = task.Net.parameters().Select(p => p.detach().clone()).ToList();
        var optimizer = new MemoryStream();
        trainer.Training.SaveOptimizer(new BinaryWriter(optimizer));

        var bad = trainer.TrainStep();

        Assert.False(bad.Finite);
        Assert.True(float.IsNaN(bad.Loss));
        Assert.Equal(1, trainer.Step);
        var after = task.Net.parameters().ToList();
        Assert.Equal(weights.Count, after.Count);
        for (int i = 0; i < weights.Count; i++)
            Assert.True(weights[i].eq(after[i]).all().item<bool>(), $"parameter {i} changed on a non-finite step");
        var optimizerAfter = new MemoryStream();
        trainer.Training.SaveOptimizer(new BinaryWriter(optimizerAfter));
        Assert.Equal(optimizer.ToArray(), optimizerAfter.ToArray());
    }
}
