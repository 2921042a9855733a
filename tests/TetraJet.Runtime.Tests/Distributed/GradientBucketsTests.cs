using TetraJet.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Distributed;

public class GradientBucketsTests
{
    static readonly (string, long, ScalarType)[] Params =
    [
        ("embed", 1000, ScalarType.Float32), ("a.weight", 300, ScalarType.Float32), ("a.bias", 20, ScalarType.Float32),
        ("huge", 5000, ScalarType.Float32), ("half", 64, ScalarType.BFloat16), ("half2", 64, ScalarType.BFloat16),
        ("b.weight", 200, ScalarType.Float32), ("b.bias", 10, ScalarType.Float32),
    ];

    [Fact]
    public void Plan_walks_parameters_backwards_in_capped_single_dtype_buckets_each_parameter_once()
    {
        const long cap = 4 * 1024;   // 1024 float32 elements
        var buckets = GradientBuckets.Plan(Params, cap);
        var order = buckets.SelectMany(b => b.Slots.Select(s => s.Index)).ToList();
        Assert.Equal([7, 6, 5, 4, 3, 2, 1, 0], order);
        Assert.Equal(Params.Select(p => p.Item1).Reverse(), buckets.SelectMany(b => b.Slots.Select(s => s.Name)));
        // Expected packing: [b.bias, b.weight] | [half2, half] (bf16) | [huge] alone (over the cap) | [a.bias, a.weight] | [embed]
        Assert.Equal([[7, 6], [5, 4], [3], [2, 1], [0]], buckets.Select(b => b.Slots.Select(s => s.Index).ToArray()).ToArray());
        Assert.Equal([210L * 4, 128L * 2, 5000L * 4, 320L * 4, 1000L * 4], buckets.Select(b => b.Bytes));
        foreach (var b in buckets)
        {
            Assert.True(b.Bytes <= cap || b.Slots.Count == 1, $"bucket of {b.Bytes} bytes has {b.Slots.Count} parameters");
            long offset = 0;
            foreach (var s in b.Slots) { Assert.Equal(offset, s.Offset); offset += s.Numel; }
            Assert.All(b.Slots, s => Assert.Equal(Params[s.Index].Item3, b.Type));
        }
        Assert.Single(GradientBuckets.Plan(Params.Where(p => p.Item3 == ScalarType.Float32).ToArray(), long.MaxValue));
        Assert.Throws<ArgumentException>(() => GradientBuckets.Plan(Params, 0));
    }

    [Fact]
    public void Flatten_and_unflatten_round_trip_every_gradient_exactly()
    {
        manual_seed(3);
        using var model = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 10));
        model.call(randn(8, 40)).square().sum().backward();
        var before = model.parameters().Select(p => p.grad!.clone()).ToList();
        var plan = GradientBuckets.For(model, bucketBytes: 512 * 4);
        Assert.True(plan.Buckets.Count > 1);
        Assert.Equal(model.parameters().Sum(p => p.numel()), plan.Buckets.Sum(b => b.Numel));
        var flats = plan.Buckets.Select(b => plan.Flatten(b)).ToList();
        foreach (var p in model.parameters()) p.grad!.zero_();
        for (int i = 0; i < flats.Count; i++) plan.Unflatten(plan.Buckets[i], flats[i]);
        var after = model.parameters().Select(p => p.grad!).ToList();
        for (int i = 0; i < before.Count; i++) Assert.True(before[i].Same(after[i]), $"gradient {i} changed in the round trip");
    }

    [Fact]
    public void Reduce_gives_every_rank_the_mean_gradient()
    {
        var grads = FakeGroup.Run(3, comm =>
        {
            manual_seed(5);
            using var model = nn.Linear(6, 4);
            using (no_grad()) foreach (var p in model.parameters()) p.grad = full_like(p, comm.Rank + 1.0f);
            GradientBuckets.For(model).Reduce(comm);
            return model.parameters().Select(p => p.grad!.clone()).ToList();
        });
        foreach (var rank in grads)
            foreach (var g in rank) Assert.True(g.eq(2.0f).all().item<bool>(), "mean of 1, 2, 3 is 2");
    }
}
