using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Oscillation;

/// <summary>
/// OutControl (ALGORITHMS.md §5) pinned on small layers: the channel count in whole 128-blocks, the layers that keep
/// plain FP4, the choice by summed per-pass L2 norms and its order, and forward, dgrad and wgrad against the scalar
/// reference quantizer applied to the gathered parts.
/// </summary>
public class OutControlTests
{
    static readonly Recipe V2 = Recipe.TetraJetV2;

    /// <summary>TetraJet-v2 + OutControl, collecting over the forwards of steps start … start + window − 1.</summary>
    static Recipe WithOutControl(Recipe r, int start = 1, int window = 1, double fraction = 0.1) =>
        r with { OutControl = true, OutControlStart = start, OutControlWindow = window, OutlierFraction = fraction };

    [Theory]
    [InlineData(256, 128)]     // ⌊25.6⌋ = 25 → one block
    [InlineData(512, 128)]     // 51 → one block
    [InlineData(1408, 256)]    // 140 → two blocks
    [InlineData(4096, 512)]    // 409 → four blocks
    public void Outlier_channels_are_a_tenth_of_K_rounded_up_to_blocks_of_128(int k, int expected)
    {
        Assert.Equal(expected, OutControl.OutlierChannelCount(k, 0.1));
        Assert.False(OutControl.KeepsPlainFp4(k, 0.1));
        using var layer = new QLinear(k, 128, WithOutControl(V2), bias: false);
        Assert.True(layer.HasOutControl);
        var state = layer.state_dict();
        Assert.Equal(expected, state["outcontrol_outliers"].numel());
        Assert.Equal(k - expected, state["outcontrol_fp4"].numel());
    }

    [Theory]
    [InlineData(RecipeId.TetraJetV2, 128, 0.1, 128)]    // the outliers would take every channel
    [InlineData(RecipeId.TetraJet, 192, 0.1, 128)]      // 64 FP4 channels: less than a block
    [InlineData(RecipeId.TetraJetV2, 128, 0.005, 0)]    // ⌊0.64⌋ = 0: no outlier channel at all
    public void A_layer_too_narrow_keeps_plain_FP4_and_says_so_once(RecipeId id, int k, double fraction, int outliers)
    {
        Assert.Equal(outliers, OutControl.OutlierChannelCount(k, fraction));
        Assert.True(OutControl.KeepsPlainFp4(k, fraction));
        var notices = new List<string>();
        var previous = OutControl.Notice;
        OutControl.Notice = notices.Add;
        try
        {
            Recipe plain = id;
            manual_seed(2);
            using var layer = new QLinear(k, 128, WithOutControl(plain, fraction: fraction), name: "narrow");
            using var reference = new QLinear(k, 128, plain);
            reference.load_state_dict(layer.state_dict());
            var notice = Assert.Single(notices);
            Assert.Contains("narrow", notice);
            Assert.Contains("plain FP4", notice);
            Assert.Contains($"{k - outliers} FP4 channels", notice);
            Assert.False(layer.HasOutControl);
            Assert.DoesNotContain(layer.state_dict().Keys, key => key.StartsWith("outcontrol_", StringComparison.Ordinal));

            // Through the window and beyond, it computes exactly what the plain recipe does.
            var x = randn(16, k) * 3;
            x[.., 0] *= 100f;
            layer.train(); reference.train();
            for (int step = 1; step <= 3; step++)
            {
                var y = layer.call(x);
                var yPlain = reference.call(x);
                Assert.True(y.eq(yPlain).all().item<bool>(), $"step {step}");
                layer.UpdateQuantizationState(step, 10);
                reference.UpdateQuantizationState(step, 10);
            }
            Assert.Null(layer.OutControlChannels);
            Assert.Single(notices);
        }
        finally
        {
            OutControl.Notice = previous;
        }
    }

    /// <summary>
    /// Per-pass channel norms planted exactly (4 rows of ±norm/2): odd channels steady at 4 + δ in every pass, even
    /// channels bursty at 10 + δ′ in the first pass of the window and 0 after. Summed norms rank the steady channels
    /// first (12 + 3δ against 10 + δ′); summed squares would rank the bursty ones first (100 against 48).
    /// </summary>
    static float PlantedNorm(int channel, int pass) => channel % 2 == 1
        ? 4f + channel % 16 / 64f
        : pass == 0 ? 10f + channel % 8 / 32f : 0f;

    static Tensor PassInput(int pass, int k)
    {
        var x = new float[4 * k];
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < k; j++) x[t * k + j] = (t % 2 == 0 ? 0.5f : -0.5f) * PlantedNorm(j, pass);
        return tensor(x, 4, k);
    }

    [Fact]
    public void Summed_L2_norms_choose_the_channels_largest_first_with_ties_to_the_lower_index()
    {
        const int K = 256, Passes = 3, Start = 2;
        var layer = new QLinear(K, 128, WithOutControl(V2, start: Start, window: Passes), bias: false);
        layer.train();
        // Step 1 is before the window: a pass that would make the even channels the outliers if it were counted.
        var before = ones(4, K);
        before[.., TensorIndex.Slice(0, K, 2)] = tensor(1000f);
        layer.call(before);
        layer.UpdateQuantizationState(1, 100);
        for (int p = 0; p < Passes; p++)
        {
            Assert.Null(layer.OutControlChannels);
            layer.call(PassInput(p, K));
            layer.UpdateQuantizationState(Start + p, 100);
        }
        var channels = layer.OutControlChannels!;

        double Sum(int j) => Enumerable.Range(0, Passes).Sum(p => (double)PlantedNorm(j, p));
        double SumOfSquares(int j) => Enumerable.Range(0, Passes).Sum(p => (double)PlantedNorm(j, p) * PlantedNorm(j, p));
        var ranked = Enumerable.Range(0, K).OrderByDescending(Sum).ThenBy(j => j).Select(j => (long)j).ToArray();   // OrderBy is stable
        Assert.Equal(ranked[..128], channels.Outliers.data<long>().ToArray());
        Assert.Equal(ranked[128..], channels.Fp4.data<long>().ToArray());
        Assert.All(channels.Outliers.data<long>().ToArray(), j => Assert.Equal(1, j % 2));
        Assert.Equal(new long[] { 15, 31, 47 }, channels.Outliers.data<long>().ToArray()[..3]);   // δ = 15/64, equal sums by index
        // The squared-norm ranking of the same passes would have chosen the other half.
        var bySquares = Enumerable.Range(0, K).OrderByDescending(SumOfSquares).ThenBy(j => j).Take(128).ToHashSet();
        Assert.Empty(bySquares.Intersect(ranked[..128].Select(j => (int)j)));
        Assert.Equal(Sum(15), layer.state_dict()["outcontrol_norms"][15].item<double>());
        Assert.True(layer.OutlierMask![15].item<bool>() && !layer.OutlierMask[0].item<bool>());
    }

    static float[] Ref(float[] x, int rows, int cols, BlockAxis axis, QuantSpec spec, ulong seed = 0, ulong stream = 0, uint? signs = null, bool pad = false)
    {
        var src = (float[])x.Clone();
        if (signs is { } s) Hadamard.Apply(src, rows, cols, axis, s);
        var y = new float[src.Length];
        ReferenceQuantizer.Quantize(src, y, rows, cols, axis, spec, seed, stream, padBlockAxis: pad);
        return y;
    }

    static float[] Columns(float[] x, int rows, int cols, long[] channels)
    {
        var y = new float[rows * channels.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < channels.Length; c++) y[r * channels.Length + c] = x[r * cols + channels[c]];
        return y;
    }

    static float[] Mix(float[] fp4, long[] fp4Channels, float[] outliers, long[] outlierChannels, int rows)
    {
        int cols = fp4Channels.Length + outlierChannels.Length;
        var y = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < fp4Channels.Length; c++) y[r * cols + fp4Channels[c]] = fp4[r * fp4Channels.Length + c];
            for (int c = 0; c < outlierChannels.Length; c++) y[r * cols + outlierChannels[c]] = outliers[r * outlierChannels.Length + c];
        }
        return y;
    }

    static Tensor T(float[] v, int rows, int cols) => tensor(v, rows, cols);

    /// <summary>A TetraJet-v2 layer with its channels fixed by one pass whose channel magnitudes span 2^0 … 2^12.</summary>
    static (QLinear Layer, long[] Outliers, long[] Fp4) FixedLayer(int k, int n, bool pack = true)
    {
        manual_seed(31);
        var layer = new QLinear(k, n, WithOutControl(V2), name: "oc") { Seed = 4321, LayerId = 9, PackSavedOperands = pack };
        using (no_grad()) layer.weight.mul_(exp2(randint(0, 6, [1, k]).to(ScalarType.Float32)));
        layer.train();
        var scale = exp2(randint(0, 13, [1, k]).to(ScalarType.Float32));
        layer.call(randn(8, k) * scale);
        layer.UpdateQuantizationState(1, 100);
        var channels = layer.OutControlChannels!;
        return (layer, channels.Outliers.data<long>().ToArray(), channels.Fp4.data<long>().ToArray());
    }

    [Fact]
    public void Forward_is_the_FP4_part_plus_the_MXFP8_part_with_blocks_in_the_gathered_order()
    {
        const int Tk = 48, K = 384, N = 128;
        var (layer, outliers, fp4) = FixedLayer(K, N);
        Assert.Equal(128, outliers.Length);
        manual_seed(32);
        var x = randn(Tk, K) * exp2(randint(-3, 9, [1, K]).to(ScalarType.Float32));
        var seen = new Tensor?[9];
        layer.OperandProbe = (slot, t) => seen[slot] = t.detach().clone().DetachFromDisposeScope();
        var y = layer.call(x).detach();
        layer.OperandProbe = null;

        var xs = x.data<float>().ToArray();
        var ws = layer.weight.detach().data<float>().ToArray();
        var xFp4 = Ref(Columns(xs, Tk, K, fp4), Tk, fp4.Length, BlockAxis.Last, V2.Q1.Spec);
        var wFp4 = Ref(Columns(ws, N, K, fp4), N, fp4.Length, BlockAxis.Last, V2.Q2.Spec);
        var xOut = Ref(Columns(xs, Tk, K, outliers), Tk, outliers.Length, BlockAxis.Last, OutControl.OutlierSpec);
        var wOut = Ref(Columns(ws, N, K, outliers), N, outliers.Length, BlockAxis.Last, OutControl.OutlierSpec);
        // The two GEMMs in FP32, summed, then the bias: the same operations the layer runs.
        var expected = nn.functional.linear(T(xFp4, Tk, fp4.Length), T(wFp4, N, fp4.Length));
        expected.add_(nn.functional.linear(T(xOut, Tk, outliers.Length), T(wOut, N, outliers.Length)));
        expected.add_(layer.bias!.detach());
        Assert.Equal(expected.data<float>().ToArray(), y.data<float>().ToArray());

        // The layer's mixed forward operands hold each part in its channels' columns.
        Assert.Equal(Mix(xFp4, fp4, xOut, outliers, Tk), seen[1]!.data<float>().ToArray());
        Assert.Equal(Mix(wFp4, fp4, wOut, outliers, N), seen[2]!.data<float>().ToArray());

        // Blocks follow the gathered order: the FP4 channels in ascending index order would block differently.
        var ascending = fp4.Order().ToArray();
        var xAscending = Ref(Columns(xs, Tk, K, ascending), Tk, ascending.Length, BlockAxis.Last, V2.Q1.Spec);
        Assert.NotEqual(Mix(xFp4, fp4, xOut, outliers, Tk), Mix(xAscending, ascending, xOut, outliers, Tk));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Backward_dgrad_is_FP4_over_all_channels_and_the_outlier_wgrad_is_MXFP8_RTN_without_RHT(bool pack)
    {
        const int Tk = 40, K = 256, N = 128;   // T not a multiple of 16: the RHT pads it, MXFP8 pads it to 32
        var (layer, outliers, fp4) = FixedLayer(K, N, pack);
        long step = layer.Step;
        ulong seed = layer.Seed;
        manual_seed(33);
        var x = (randn(Tk, K) * exp2(randint(-3, 9, [1, K]).to(ScalarType.Float32))).requires_grad_();
        var y = layer.call(x);
        var dy = randn(Tk, N);
        y.backward([dy]);

        var xs = x.detach().data<float>().ToArray();
        var ws = layer.weight.detach().data<float>().ToArray();
        var dys = dy.data<float>().ToArray();
        ulong Stream(int slot) => LayerStreams.For(step, layer.LayerId, slot);
        var xFp4 = Ref(Columns(xs, Tk, K, fp4), Tk, fp4.Length, BlockAxis.Last, V2.Q1.Spec);
        var xOut = Ref(Columns(xs, Tk, K, outliers), Tk, outliers.Length, BlockAxis.Last, OutControl.OutlierSpec);
        var wMixed = Mix(Ref(Columns(ws, N, K, fp4), N, fp4.Length, BlockAxis.Last, V2.Q2.Spec), fp4,
                         Ref(Columns(ws, N, K, outliers), N, outliers.Length, BlockAxis.Last, OutControl.OutlierSpec), outliers, N);

        // dX = Q3(dY)·Q4(Ŵ): Ŵ the full mixed matrix in its own column order, Q4 along N with the pair's RHT signs.
        uint dgradSigns = Philox.HadamardSigns(seed, Stream(LayerStreams.DgradHadamard));
        var dy3 = Ref(dys, Tk, N, BlockAxis.Last, V2.Q3.Spec, seed, Stream(3), dgradSigns);
        var w4 = Ref(wMixed, N, K, BlockAxis.First, V2.Q4.Spec, seed, Stream(4), dgradSigns);
        Assert.Equal(T(dy3, Tk, N).matmul(T(w4, N, K)).data<float>().ToArray(), x.grad!.data<float>().ToArray());

        // dW[:, fp4] = Q5(dY)ᵀ·Q6(X̂_fp4), X̂_fp4 the gathered [T, K − k] part (its SR indices are that tensor's).
        int tp = (Tk + 15) / 16 * 16;
        var dyPad = new float[tp * N]; Array.Copy(dys, dyPad, dys.Length);
        var xPad = new float[tp * fp4.Length]; Array.Copy(xFp4, xPad, xFp4.Length);
        uint wgradSigns = Philox.HadamardSigns(seed, Stream(LayerStreams.WgradHadamard));
        var dy5 = Ref(dyPad, tp, N, BlockAxis.First, V2.Q5.Spec, seed, Stream(5), wgradSigns, pad: true);
        var x6 = Ref(xPad, tp, fp4.Length, BlockAxis.First, V2.Q6.Spec, seed, Stream(6), wgradSigns, pad: true);
        var dwFp4 = T(dy5, tp, N).t().matmul(T(x6, tp, fp4.Length)).data<float>().ToArray();

        // dW[:, out] = MXFP8(dY)ᵀ·MXFP8(X̂_out): RTN along T (padded to 32), no RHT, from the forward's MXFP8 values.
        var dy8 = Ref(dys, Tk, N, BlockAxis.First, OutControl.OutlierSpec, pad: true);
        var x8 = Ref(xOut, Tk, outliers.Length, BlockAxis.First, OutControl.OutlierSpec, pad: true);
        var dwOut = T(dy8, Tk, N).t().matmul(T(x8, Tk, outliers.Length)).data<float>().ToArray();
        Assert.Equal(Mix(dwFp4, fp4, dwOut, outliers, N), layer.weight.grad!.data<float>().ToArray());
        Assert.Equal(dy.sum(dim: 0).data<float>().ToArray(), layer.bias!.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Both_parts_are_saved_in_storage_form()
    {
        const int Tk = 64, K = 256, N = 128;
        var (layer, _, _) = FixedLayer(K, N);
        var x = randn(Tk, K).requires_grad_();
        layer.call(x);
        // NVFP4 of the FP4 parts of X̂ [64, 128] and Ŵ [128, 128], MXFP8 of their outlier parts [64, 128] and [128, 128].
        double nvfp4 = 0.5 + 1.0 / 16 + 4.0 / 128, mxfp8 = 1 + 1.0 / 32;
        Assert.Equal((long)((Tk + N) * 128 * (nvfp4 + mxfp8)), layer.LastSavedBytes);
        layer.PackSavedOperands = false;
        layer.call(x);
        Assert.Equal((long)(Tk + N) * K * 4, layer.LastSavedBytes);
    }

    [Fact]
    public void Channel_selection_is_deterministic_and_ties_go_to_the_lower_index()
    {
        var sums = tensor(new double[] { 1, 5, 3, 5, 0, 3, 5 });
        var chosen = OutControl.SelectChannels(sums, 4);
        Assert.Equal(new long[] { 1, 3, 6, 2 }, chosen.Outliers.data<long>().ToArray());
        Assert.Equal(new long[] { 5, 0, 4 }, chosen.Fp4.data<long>().ToArray());
        // Per-pass norms are L2 norms, not squares: ‖(3, 4)‖ = 5.
        var x = tensor(new float[] { 3, 0, 4, 1 }, 2, 2);
        Assert.Equal(new double[] { 5, 1 }, OutControl.PassNorms(x).data<double>().ToArray());
    }
}
