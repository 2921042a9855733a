using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Distributed;

/// <summary>
/// Data parallelism of one model on one rank: each rank trains on its own shard of every batch, and
/// <see cref="QuantizedTraining.Step"/> (given this object in <see cref="QuantizedTrainingOptions.DataParallel"/>)
/// replaces the gradients with their mean over the ranks before clipping and the optimizer step, so every rank takes
/// the same step and the weights stay identical. The quantization state follows (docs/DISTRIBUTED.md):
/// Q-EMA, OsciReset and oscillation tracking read only the weights; Q-Ramping's calibration measures steps that are
/// reduced the same way; OutControl's channel norm sums are summed over the ranks before the update that fixes the
/// channels. Each layer's data slots draw rank-specific stochastic rounding (<see cref="QLinear.StreamRank"/>).
/// </summary>
/// <example>
/// <code>
/// var env = DistributedEnvironment.FromProcess()!;               // RANK, WORLD_SIZE, … as torchrun sets them
/// using var comm = NcclCommunicator.FromEnvironment(env);
/// var parallel = new DataParallel(model, comm);
/// using var training = new QuantizedTraining(model, new() { TotalSteps = steps, DataParallel = parallel });
/// parallel.Start();                                              // after any checkpoint is loaded
/// // each step: this rank's shard → loss → backward → training.Step()
/// </code>
/// </example>
public sealed class DataParallel
{
    readonly List<(string Name, QLinear Layer)> _layers;
    readonly List<(string Name, Tensor Tensor)> _parameters;
    bool _started;

    public nn.Module Model { get; }
    public ICommunicator Communicator { get; }
    public GradientBuckets Gradients { get; }
    public int Rank => Communicator.Rank;
    public int WorldSize => Communicator.WorldSize;

    /// <summary>Compare the weights of all ranks every this many optimizer steps (0: never; the check after <see cref="Start"/> always runs).</summary>
    public int CheckEvery { get; init; } = 100;

    public DataParallel(nn.Module model, ICommunicator communicator, long bucketBytes = GradientBuckets.DefaultBucketBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(communicator);
        Model = model;
        Communicator = communicator;
        Gradients = GradientBuckets.For(model, bucketBytes);
        _layers = model.QuantizedLinears().Select(l => (l.Path, l.Layer)).ToList();
        foreach (var (_, layer) in _layers) layer.StreamRank = communicator.Rank;
        _parameters = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
    }

    /// <summary>
    /// Call once the model is built (and loaded, when resuming), before the first step: rank 0's parameters and device
    /// buffers go to every rank, OutControl's partial norm sums stay on rank 0 alone (the others collect afresh), and
    /// the weights are compared.
    /// </summary>
    public void Start()
    {
        using (no_grad())
        {
            foreach (var (_, p) in _parameters) Communicator.Broadcast(p, 0);
            foreach (var (_, b) in Model.named_buffers())
                if (b.device_type != DeviceType.CPU && b.is_contiguous()) Communicator.Broadcast(b, 0);
            if (Rank != 0) ClearOtherRanksNorms();
        }
        _started = true;
        CheckWeights(0);
    }

    /// <summary>Whether <see cref="Start"/> has run.</summary>
    public bool Started => _started;

    /// <summary>Gradients ← their mean over the ranks (before clipping and the optimizer step).</summary>
    public void ReduceGradients()
    {
        if (!_started) throw new InvalidOperationException("DataParallel.Start() has not run: call it after building (and loading) the model, before the first step");
        Gradients.Reduce(Communicator);
    }

    /// <summary>The mean of a per-rank number over the ranks (a loss); identical on every rank.</summary>
    public double Mean(Tensor value)
    {
        using var _ = no_grad();
        using var t = value.detach().to(ScalarType.Float64).reshape(1).clone();
        Communicator.AllReduce(t, ReduceOp.Sum);
        double sum = t.item<double>();
        return WorldSize == 1 ? sum : sum / WorldSize;
    }

    /// <summary>The sum of a per-rank count over the ranks.</summary>
    public long Sum(long value, Device device)
    {
        using var t = tensor(new[] { value }, device: device);
        Communicator.AllReduce(t, ReduceOp.Sum);
        return t.item<long>();
    }

    /// <summary>
    /// Before the quantization update of a step: OutControl's channel norm sums (rank 0 holds the run's total so far,
    /// the others what this step added) summed over the ranks into one total on every rank, so an update that fixes
    /// the channels fixes the same ones everywhere.
    /// </summary>
    public void ReduceOutControlNorms()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var norms = _layers.Select(l => l.Layer.OutControlNormsWhileCollecting).OfType<Tensor>().ToList();
        if (norms.Count == 0) return;
        var flat = cat(norms.Select(n => n.reshape(-1)).ToList(), 0);
        Communicator.AllReduce(flat, ReduceOp.Sum);
        long offset = 0;
        foreach (var n in norms) { n.copy_(flat.narrow(0, offset, n.numel()).view_as(n)); offset += n.numel(); }
    }

    /// <summary>After the quantization update: ranks other than 0 start their next contribution from zero.</summary>
    public void AfterQuantizationUpdate(long step)
    {
        if (Rank != 0) using (no_grad()) ClearOtherRanksNorms();
        if (CheckEvery > 0 && step % CheckEvery == 0) CheckWeights(step);
    }

    void ClearOtherRanksNorms()
    {
        foreach (var (_, layer) in _layers) layer.OutControlNormsWhileCollecting?.zero_();
    }

    /// <summary>
    /// Compares every parameter's <see cref="WeightFingerprint"/> over the ranks (one all-reduce of the maxima and
    /// negated minima); throws on every rank alike, naming the parameters that differ, when any rank's weights differ.
    /// </summary>
    public void CheckWeights(long step)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var prints = WeightFingerprint.Of(_parameters.Select(p => p.Tensor));
        var both = cat([prints, prints.neg()], 0).contiguous();
        Communicator.AllReduce(both, ReduceOp.Max);
        var cpu = both.cpu();
        var max = cpu.narrow(0, 0, prints.size(0));
        var min = cpu.narrow(0, prints.size(0), prints.size(0)).neg();
        var differ = max.ne(min).any(1);
        var bad = Enumerable.Range(0, _parameters.Count).Where(i => differ[i].item<bool>()).Select(i => _parameters[i].Name).ToList();
        if (bad.Count > 0)
            throw new WeightMismatchException(step, bad);
        var mine = prints.cpu().data<long>().ToArray();
        LastDigest = WeightFingerprint.Digest(mine);
    }

    /// <summary>The digest of all parameters' fingerprints at the last successful check.</summary>
    public ulong LastDigest { get; private set; }
}

/// <summary>The ranks' weights differ: data parallelism broke its one invariant, and training must not go on.</summary>
public sealed class WeightMismatchException(long step, IReadOnlyList<string> parameters)
    : Exception($"after step {step} the ranks' weights differ in {parameters.Count} parameter(s): {string.Join(", ", parameters.Take(8))}{(parameters.Count > 8 ? ", …" : "")}")
{
    public long Step { get; } = step;
    public IReadOnlyList<string> Parameters { get; } = parameters;
}
