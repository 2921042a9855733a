using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary>
/// QLinear against the reference composition: quantize each operand with the scalar reference, then matmul in FP32.
/// </summary>
public class QLinearReferenceTests
{
    public static TheoryData<RecipeId> Recipes => new() { RecipeId.BF16, RecipeId.Microscaling, RecipeId.TetraJet, RecipeId.NvidiaNvfp4, RecipeId.TetraJetV2 };

    static float[] Ref(float[] x, int rows, int cols, BlockAxis axis, QuantizerSlot slot, ulong seed, ulong stream, uint? signs, bool pad)
    {
        if (!slot.IsQuantized) return x;
        var src = (float[])x.Clone();
        if (signs is { } s) Hadamard.Apply(src, rows, cols, axis, s);
        var y = new float[src.Length];
        ReferenceQuantizer.Quantize(src, y, rows, cols, axis, slot.Spec, seed, stream, padBlockAxis: pad);
        return y;
    }

    static float[] MatMul(float[] a, int m, int k, float[] b, int n, bool transposeB)
    {
        using var ta = tensor(a, m, k);
        using var tb = transposeB ? tensor(b, n, k).t() : tensor(b, k, n);
        using var c = ta.matmul(tb);
        return c.data<float>().ToArray();
    }

    [Theory]
    [MemberData(nameof(Recipes))]
    public void Forward_and_backward_equal_the_reference_composition(RecipeId id)
    {
        Recipe recipe = id;
        const int T = 40, K = 128, N = 256;   // T deliberately not a block multiple: the token axis is padded
        const ulong seed = 1234;
        manual_seed(7);
        var layer = new QLinear(K, N, recipe, name: "probe") { Seed = seed, LayerId = 5, Step = 3 };
        var x = randn(T, K).requires_grad_();
        var y = layer.call(x);
        var dy = randn(T, N);
        y.backward([dy]);

        var xs = x.detach().data<float>().ToArray();
        var ws = layer.weight.detach().data<float>().ToArray();
        var bs = layer.bias!.detach().data<float>().ToArray();
        var dys = dy.data<float>().ToArray();

        var xq = Ref(xs, T, K, BlockAxis.Last, recipe.Q1, seed, 0, null, false);
        var wq = Ref(ws, N, K, BlockAxis.Last, recipe.Q2, seed, 0, null, false);
        var yRef = MatMul(xq, T, K, wq, N, transposeB: true);
        for (int t = 0; t < T; t++) for (int n = 0; n < N; n++) yRef[t * N + n] += bs[n];
        Assert.Equal(yRef, y.detach().data<float>().ToArray());

        // dgrad: Q3(dY) along N, Q4(Ŵ) along N, sharing RHT signs.
        ulong Stream(int slot) => LayerStreams.For(3, 5, slot);
        uint dgradSigns = Philox.HadamardSigns(seed, Stream(LayerStreams.DgradHadamard));
        var dy3 = Ref(dys, T, N, BlockAxis.Last, recipe.Q3, seed, Stream(3), recipe.Q3.Hadamard ? dgradSigns : null, false);
        var w4 = recipe.Q4.Source == SlotSource.ForwardCodesTransposed ? wq
            : Ref(wq, N, K, BlockAxis.First, recipe.Q4, seed, Stream(4), recipe.Q4.Hadamard ? dgradSigns : null, false);
        var dxRef = MatMul(dy3, T, N, w4, K, transposeB: false);
        Assert.Equal(dxRef, x.grad!.data<float>().ToArray());

        // wgrad: Q5(dY) along T, Q6(X̂ or X) along T, T zero-padded (to 16 first when an RHT mixes rows).
        int tp = recipe.Q5.Hadamard ? (T + 15) / 16 * 16 : T;
        var dyPad = new float[tp * N]; Array.Copy(dys, dyPad, dys.Length);
        var x6src = recipe.Q6.Source == SlotSource.Original ? xs : xq;
        var xPad = new float[tp * K]; Array.Copy(x6src, xPad, x6src.Length);
        uint wgradSigns = Philox.HadamardSigns(seed, Stream(LayerStreams.WgradHadamard));
        var dy5 = Ref(dyPad, tp, N, BlockAxis.First, recipe.Q5, seed, Stream(5), recipe.Q5.Hadamard ? wgradSigns : null, true);
        var x6 = Ref(xPad, tp, K, BlockAxis.First, recipe.Q6, seed, Stream(6), recipe.Q6.Hadamard ? wgradSigns : null, true);
        using var dwRef = tensor(dy5, tp, N).t().matmul(tensor(x6, tp, K));
        Assert.Equal(dwRef.data<float>().ToArray(), layer.weight.grad!.data<float>().ToArray());

        var dbRef = new float[N];
        using (var s = dy.sum(dim: 0)) s.data<float>().CopyTo(dbRef);
        Assert.Equal(dbRef, layer.bias.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Bf16_recipe_matches_nn_Linear_values_and_gradients()
    {
        manual_seed(3);
        var q = new QLinear(64, 96, Recipe.BF16);
        var lin = nn.Linear(64, 96);
        using (no_grad()) { lin.weight!.copy_(q.weight); lin.bias!.copy_(q.bias!); }
        var x1 = randn(5, 7, 64).requires_grad_();
        var x2 = x1.detach().clone().requires_grad_();
        var y1 = q.call(x1); var y2 = lin.call(x2);
        Assert.True(y1.eq(y2).all().item<bool>());
        var g = randn(5, 7, 96);
        y1.backward([g]); y2.backward([g]);
        Assert.True(x1.grad!.allclose(x2.grad!, 1e-6, 1e-6));
        Assert.True(q.weight.grad!.allclose(lin.weight.grad!, 1e-5, 1e-5));
        Assert.True(q.bias!.grad!.allclose(lin.bias!.grad!, 1e-5, 1e-5));
    }
}
