using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Distributed;

/// <summary>One parameter's place in a bucket: its index among the model's parameters and its slice of the flat buffer.</summary>
public readonly record struct BucketSlot(int Index, string Name, long Offset, long Numel);

/// <summary>Parameters reduced together: one flat buffer of <see cref="Numel"/> elements of <see cref="Type"/>.</summary>
public sealed record Bucket(ScalarType Type, IReadOnlyList<BucketSlot> Slots)
{
    public long Numel => Slots.Count == 0 ? 0 : Slots[^1].Offset + Slots[^1].Numel;
    public long Bytes => Numel * GradientBuckets.ElementSize(Type);
}

/// <summary>
/// The gradient reduction plan of data parallelism: parameters in reverse registration order (the order backward
/// finishes their gradients), packed into buckets of at most <see cref="DefaultBucketBytes"/> (a larger parameter is a
/// bucket of its own) and of one dtype. <see cref="Reduce"/> flattens each bucket's gradients, all-reduces the sum,
/// divides by the world size and copies the mean back. TorchSharp 0.107 has no gradient hooks (only forward hooks on
/// modules), so the buckets are reduced after backward, one after another, not overlapped with it.
/// </summary>
public sealed class GradientBuckets
{
    /// <summary>25 MiB, as PyTorch's DistributedDataParallel.</summary>
    public const long DefaultBucketBytes = 25L * 1024 * 1024;

    readonly IReadOnlyList<Parameter> _parameters;

    public IReadOnlyList<Bucket> Buckets { get; }

    GradientBuckets(IReadOnlyList<Parameter> parameters, IReadOnlyList<Bucket> buckets) => (_parameters, Buckets) = (parameters, buckets);

    public static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        _ => throw new ArgumentException($"no element size for {t}"),
    };

    /// <summary>
    /// The buckets for parameters given in registration order (name, element count, dtype): walked from the last to
    /// the first; a bucket closes when the next parameter would take it past <paramref name="bucketBytes"/> or has
    /// another dtype.
    /// </summary>
    public static IReadOnlyList<Bucket> Plan(IReadOnlyList<(string Name, long Numel, ScalarType Type)> parameters, long bucketBytes = DefaultBucketBytes)
    {
        if (bucketBytes <= 0) throw new ArgumentException($"bucket size {bucketBytes}: use a positive number of bytes");
        var buckets = new List<Bucket>();
        var slots = new List<BucketSlot>();
        ScalarType type = default;
        long offset = 0;
        for (int i = parameters.Count - 1; i >= 0; i--)
        {
            var (name, numel, t) = parameters[i];
            long bytes = numel * ElementSize(t);
            if (slots.Count > 0 && (t != type || (offset * ElementSize(type)) + bytes > bucketBytes))
            {
                buckets.Add(new Bucket(type, slots));
                slots = [];
                offset = 0;
            }
            type = t;
            slots.Add(new BucketSlot(i, name, offset, numel));
            offset += numel;
        }
        if (slots.Count > 0) buckets.Add(new Bucket(type, slots));
        return buckets;
    }

    /// <summary>The plan of <paramref name="model"/>'s trainable parameters.</summary>
    public static GradientBuckets For(nn.Module model, long bucketBytes = DefaultBucketBytes)
    {
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var plan = Plan(named.Select(p => (p.name, p.parameter.numel(), p.parameter.dtype)).ToList(), bucketBytes);
        return new GradientBuckets(named.Select(p => p.parameter).ToList(), plan);
    }

    /// <summary>The gradients of a bucket in one flat tensor (zeros for a parameter without a gradient).</summary>
    public Tensor Flatten(Bucket bucket)
    {
        var first = _parameters[bucket.Slots[0].Index];
        var flat = empty(bucket.Numel, dtype: bucket.Type, device: first.device);
        foreach (var s in bucket.Slots)
        {
            var g = _parameters[s.Index].grad;
            var part = flat.narrow(0, s.Offset, s.Numel);
            if (g is null) part.zero_();
            else part.copy_(g.reshape(-1));
        }
        return flat;
    }

    /// <summary>
    /// Copies a reduced flat buffer back into the gradients. A parameter that has no gradient here must get none
    /// anywhere: a non-zero reduced value for it means another rank used it and this one did not, and the weights
    /// would drift apart.
    /// </summary>
    public void Unflatten(Bucket bucket, Tensor flat)
    {
        foreach (var s in bucket.Slots)
        {
            var p = _parameters[s.Index];
            var g = p.grad;
            var part = flat.narrow(0, s.Offset, s.Numel);
            if (g is not null) g.copy_(part.view_as(g));
            else if (part.count_nonzero().item<long>() != 0)
                throw new InvalidOperationException($"parameter {s.Name} got no gradient on this rank but did on another: every rank must use every parameter in each step");
        }
    }

    /// <summary>Replaces every gradient with its mean over the ranks, bucket by bucket.</summary>
    public void Reduce(ICommunicator comm)
    {
        using var _ = no_grad();
        foreach (var bucket in Buckets)
        {
            using var scope = NewDisposeScope();
            var flat = Flatten(bucket);
            comm.AllReduce(flat, ReduceOp.Sum);
            // x / 1 is x: a world of one leaves the gradients bit for bit as backward left them.
            if (comm.WorldSize > 1) flat.div_(comm.WorldSize);
            Unflatten(bucket, flat);
        }
    }
}
