using TetraJet.Models.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>DeiT-style ViT on Fashion-MNIST.</summary>
public sealed class VitTask : ITrainTask
{
    readonly FashionMnist data;
    readonly Vit model;
    readonly int batch;
    readonly long seed;
    readonly double smoothing;
    readonly Augment augment;
    int[]? order; long orderEpoch = -1;

    public VitTask(string size, Recipe recipe, FashionMnist data, int batch, long seed, double smoothing, Augment augment)
    {
        this.augment = augment;
        this.data = data; this.batch = batch; this.seed = seed; this.smoothing = smoothing;
        var config = VitConfig.Get(size) with { ImageSize = data.Train.Rows };
        if (data.Train.Rows != data.Train.Cols || data.Train.Rows % config.PatchSize != 0)
            throw new DataException($"images of {data.Train.Rows}×{data.Train.Cols} do not tile into {config.PatchSize}×{config.PatchSize} patches; use square images whose side is a multiple of {config.PatchSize}");
        if (data.Train.Count < batch) throw new ArgumentException($"batch {batch} is larger than the {data.Train.Count} training images; use a smaller --batch or more --train-subset");
        model = new Vit(config, recipe);
    }

    public string ModelName => "vit";
    public nn.Module<Tensor, Tensor> Net => model;
    public object Config => model.Config;
    public string SizeName => model.Config.Size;
    public string Unit => "img/s";
    public int StepsPerEpoch => data.Train.Count / batch;
    public long ItemsPerStep => batch;
    public double Beta2 => 0.999;

    public bool Decays(string name, Tensor p) => p.dim() >= 2 && !name.Contains("pos_embed") && !name.Contains("cls_token");

    public (Tensor Input, Tensor Target) Batch(long step)
    {
        long epoch = step / StepsPerEpoch;
        int i = (int)(step % StepsPerEpoch);
        if (epoch != orderEpoch) { order = SplitMix64.Permutation(data.Train.Count, seed, epoch); orderEpoch = epoch; }
        return FashionMnist.Batch(data.Train, order.AsSpan(i * batch, batch), augment, SplitMix64.For(seed, step, 1));
    }

    public (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target) =>
        (nn.functional.cross_entropy(output, target, label_smoothing: smoothing), output.argmax(1).eq(target).sum());

    public EvalResult Evaluate(Device device)
    {
        using var _ = no_grad();
        bool wasTraining = model.training;
        model.eval();
        double lossSum = 0; long correct = 0;
        var set = data.Test;
        const int chunk = 500;
        var idx = Enumerable.Range(0, set.Count).ToArray();
        for (int s = 0; s < set.Count; s += chunk)
        {
            using var scope = NewDisposeScope();
            var (x, y) = FashionMnist.Batch(set, idx.AsSpan(s, Math.Min(chunk, set.Count - s)), Augment.None, default);
            x = x.to(device); y = y.to(device);
            var logits = model.call(x);
            lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(y).sum().item<long>();
        }
        model.train(wasTraining);
        return new EvalResult(lossSum / set.Count, (double)correct / set.Count, null);
    }

    public void Dispose() => model.Dispose();
}
