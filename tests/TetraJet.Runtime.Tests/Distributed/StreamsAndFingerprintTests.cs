using TetraJet.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Distributed;

public class StreamsAndFingerprintTests
{
    [Fact]
    public void Rank_zero_keeps_the_key_and_other_ranks_get_distinct_keys()
    {
        foreach (ulong key in new ulong[] { 0, 42, ulong.MaxValue })
        {
            Assert.Equal(key, LayerStreams.KeyForRank(key, 0));
            var keys = Enumerable.Range(0, 1024).Select(r => LayerStreams.KeyForRank(key, r)).ToList();
            Assert.Equal(1024, keys.Distinct().Count());
        }
        Assert.Equal([1, 3, 5, 6], Enumerable.Range(1, 6).Where(LayerStreams.IsDataSlot));
    }

    [Fact]
    public void A_layer_on_rank_one_rounds_its_data_slots_differently_and_its_weight_slots_alike()
    {
        var recipe = Recipe.Get(RecipeId.TetraJet);
        manual_seed(9);
        using var a = new QLinear(128, 64, recipe);
        using var b = new QLinear(128, 64, recipe);
        using (no_grad()) { b.weight.copy_(a.weight); b.bias!.copy_(a.bias!); }
        b.LayerId = a.LayerId;
        var x = randn(32, 128);
        var dy = randn(32, 64);
        var xa = x.clone().requires_grad_(true);
        var xb = x.clone().requires_grad_(true);
        var ya = a.call(xa); ya.backward([dy]);
        var yb = b.call(xb); yb.backward([dy]);
        Assert.True(a.weight.grad!.Same(b.weight.grad!), "same rank, same streams: same gradient");

        b.StreamRank = 1;
        a.weight.grad!.zero_(); b.weight.grad!.zero_();
        var za = a.call(x); za.backward([dy]);
        var zb = b.call(x); zb.backward([dy]);
        Assert.True(za.Same(zb), "the forward (RTN here) does not depend on the rank");
        Assert.False(a.weight.grad!.Same(b.weight.grad!), "Q5/Q6 of rank 1 must draw other stochastic rounding");
    }

    [Fact]
    public void Fingerprints_are_exact_and_catch_a_one_ulp_change()
    {
        manual_seed(4);
        var w = randn(1000);
        var same = w.clone();
        Assert.True(WeightFingerprint.Of(w).Same(WeightFingerprint.Of(same)));
        Assert.True(WeightFingerprint.Of(w).Same(WeightFingerprint.Of(w.flip(0))), "order-independent by design");
        var bumped = w.clone();
        bumped[17] = tensor(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(w[17].item<float>()) + 1));
        Assert.False(WeightFingerprint.Of(w).Same(WeightFingerprint.Of(bumped)));
        var negated = w.clone();
        negated[3] = -negated[3];
        Assert.False(WeightFingerprint.Of(w).Same(WeightFingerprint.Of(negated)));
        Assert.Equal(new long[] { 0, 0, 0, 0 }, WeightFingerprint.Of(zeros(5)).data<long>().ToArray());
    }
}
