using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>
/// One data-parallel rank's view of a task: each step's batch is the task's own batch of that step (the same pure
/// function of the seed and step on every rank), of which rank r takes rows [r·B/N, (r+1)·B/N). The shards of a step
/// are disjoint and cover the batch, so N ranks together see exactly what one process sees with the same --batch,
/// and a run is reproducible from the seed and the rank count. Everything else is the task's.
/// </summary>
public sealed class ShardedTask(ITrainTask inner, int rank, int worldSize) : ITrainTask
{
    public ITrainTask Inner { get; } = inner;
    public int Rank { get; } = rank;
    public int WorldSize { get; } = worldSize;

    /// <summary>Rank <paramref name="rank"/>'s rows of a batch of <paramref name="rows"/>: (first row, count).</summary>
    public static (long Start, long Count) Rows(long rows, int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new ArgumentException($"rank {rank} of world size {worldSize}");
        if (rows % worldSize != 0)
            throw new ArgumentException($"a batch of {rows} does not split evenly over {worldSize} GPUs; use a --batch that is a multiple of {worldSize}");
        long per = rows / worldSize;
        return (rank * per, per);
    }

    public (Tensor Input, Tensor Target) Batch(long step)
    {
        var (x, y) = Inner.Batch(step);
        if (WorldSize == 1) return (x, y);
        var (start, count) = Rows(x.shape[0], Rank, WorldSize);
        return (x.narrow(0, start, count), y.narrow(0, start, count));
    }

    public string ModelName => Inner.ModelName;
    public nn.Module<Tensor, Tensor> Net => Inner.Net;
    public object Config => Inner.Config;
    public string SizeName => Inner.SizeName;
    public string Unit => Inner.Unit;
    public int StepsPerEpoch => Inner.StepsPerEpoch;
    /// <summary>The whole step's items (all ranks together), as throughput counts them.</summary>
    public long ItemsPerStep => Inner.ItemsPerStep;
    public double Beta2 => Inner.Beta2;
    public bool Decays(string name, Tensor p) => Inner.Decays(name, p);
    public (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target) => Inner.Loss(output, target);
    public EvalResult Evaluate(Device device) => Inner.Evaluate(device);
    public void Dispose() => Inner.Dispose();
}
