using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Oscillation;

/// <summary>
/// OsciReset on the authors' schedule (ALGORITHMS.md §5): snapshot at t ≥ S with t mod P = 0, track the next W steps,
/// reset at t mod P = W + 1 where R = D_Q / D_FP ≥ τ, with R = 0 where D_FP = 0; under OutControl the FP4 part only.
/// </summary>
public class OsciResetTests
{
    [Fact]
    public void Defaults_are_64_percent_period_200_window_50()
    {
        var r = Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true };
        Assert.Equal((0.64, 200, 50, 8.0), (r.OsciResetStart, r.OsciResetPeriod, r.OsciResetWindow, r.OsciResetThreshold));
        // 12,500 steps: S = 8000, so 8000 snapshots, 8001–8050 track, 8051 resets; the next period starts at 8200.
        long? Phase(long t) => QLinear.OsciResetPhase(r, t, 12_500);
        Assert.Equal(0L, Phase(8000));
        Assert.Equal(1L, Phase(8001));
        Assert.Equal(50L, Phase(8050));
        Assert.Equal(51L, Phase(8051));
        Assert.Null(Phase(8052));
        Assert.Null(Phase(8199));
        Assert.Equal(0L, Phase(8200));
        Assert.Equal(51L, Phase(12_451));
        // Before S nothing happens, also in a period that straddles it (its snapshot step lies before S).
        Assert.Null(Phase(7999));
        Assert.Null(Phase(7801));
        Assert.Null(QLinear.OsciResetPhase(r, 8010, 12_600));   // S = 8064: the period of 8000 is not measured
        Assert.Equal(0L, QLinear.OsciResetPhase(r, 8200, 12_600));
    }

    /// <summary>TetraJet-v2, 128×128: every row's blocks have amax 6 (scale ≈ 1); element [5, 7] can flip between 1 and 1.5.</summary>
    static QLinear OscillatingLayer(Recipe recipe)
    {
        var layer = new QLinear(128, 128, recipe, bias: false);
        using (no_grad())
        {
            layer.weight.fill_(1f);
            layer.weight[.., 0] = tensor(6f);
        }
        return layer;
    }

    static float At(Tensor t, long i, long j) => t[i, j].item<float>();

    [Fact]
    public void Snapshot_tracking_and_reset_happen_at_the_scheduled_steps()
    {
        // S = 0.5·40 = 20, P = 10, W = 3: step 20 snapshots, 21–23 track, 24 resets; 10–14 lie before S.
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true, OsciResetStart = 0.5, OsciResetPeriod = 10, OsciResetWindow = 3 };
        var layer = OscillatingLayer(recipe);
        Tensor Buf(string name) => layer.get_buffer(name)!;
        for (int step = 1; step <= 30; step++)
        {
            float w = step % 2 == 0 ? 1.26f : 1.24f;                         // RTN: 1.5 and 1 (the midpoint is 1.25)
            using (no_grad()) layer.weight[5, 7] = tensor(w);
            float q = Quantizer.Quantize(layer.weight.detach(), recipe.Q2.Spec)[5, 7].item<float>();
            layer.UpdateQuantizationState(step, 40);
            float dfp = At(Buf("oscireset_dfp"), 5, 7), prev = At(Buf("oscireset_prev_w"), 5, 7);
            string at = $"step {step}";
            if (step < 20)
            {
                Assert.True(dfp == 0 && prev == 0, at);                        // untouched, also in the period of 10
                Assert.Equal(w, At(layer.weight, 5, 7));
            }
            else if (step == 20)
            {
                Assert.Equal(1.26f, prev);                                     // the snapshot
                Assert.Equal(0f, dfp);
            }
            else if (step <= 23)
            {
                Assert.Equal(0.02f * (step - 20), dfp, 4);                    // one |Δw| per tracked step
                Assert.Equal(0.5f * (step - 20), At(Buf("oscireset_dq"), 5, 7), 4);
                Assert.Equal(w, At(layer.weight, 5, 7));
            }
            else if (step == 24)
            {
                // R = 1.5 / 0.06 = 25 ≥ 8: w ← Q(w) of this step's weight (1.26 → 1.5), accumulators dropped.
                Assert.Equal(q, At(layer.weight, 5, 7));
                Assert.Equal(1.5f, q, 4);
                Assert.Equal(0f, dfp);
            }
            else
            {
                Assert.Equal(w, At(layer.weight, 5, 7));                        // 25–29: outside the window; 30 snapshots again
                Assert.Equal(0f, dfp);
            }
        }
        Assert.Equal(1.26f, At(Buf("oscireset_prev_w"), 5, 7));              // the snapshot of step 30
    }

    [Fact]
    public void An_element_with_no_full_precision_movement_is_never_reset()
    {
        // MXFP4: w[0, 1] = 1.3 stays put while w[0, 0] alternates 4 and 8, switching the block scale between 1 and 2,
        // so Q(w[0, 1]) alternates 1.5 and 1: D_Q > 0 with D_FP = 0. R = 0 there; D_Q / (D_FP + 1e-8) would reset it.
        var recipe = Recipe.Get(RecipeId.TetraJet) with { OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 10, OsciResetWindow = 4, OsciResetThreshold = 8 };
        var layer = new QLinear(32, 32, recipe, bias: false);
        using (no_grad()) { layer.weight.fill_(0.5f); layer.weight[0, 1] = tensor(1.3f); }
        var dq = layer.get_buffer("oscireset_dq")!;
        var dfp = layer.get_buffer("oscireset_dfp")!;
        for (int step = 1; step <= 15; step++)
        {
            using (no_grad()) layer.weight[0, 0] = tensor(step % 2 == 0 ? 4f : 8f);
            layer.UpdateQuantizationState(step, 100);
            if (step == 14)
            {
                Assert.Equal(0f, At(dfp, 0, 1));
                Assert.Equal(2f, At(dq, 0, 1));                                 // four flips of 0.5
                Assert.Equal(16f, At(dfp, 0, 0));                               // the scale setter: R = D_Q / D_FP = 1
            }
        }
        Assert.Equal(1.3f, At(layer.weight, 0, 1));                             // step 15 reset nothing
        Assert.Equal(8f, At(layer.weight, 0, 0));
        Assert.True(layer.weight.detach()[1..].eq(0.5f).all().item<bool>());
    }

    [Fact]
    public void Under_OutControl_only_the_FP4_part_is_tracked_and_reset_in_its_gathered_blocks()
    {
        const int K = 256, N = 128;
        var recipe = Recipe.Get(RecipeId.TetraJetV2) with
        {
            OutControl = true, OutControlStart = 1, OutControlWindow = 1,
            OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 10, OsciResetWindow = 3,
        };
        var layer = new QLinear(K, N, recipe, bias: false);
        using (no_grad()) layer.weight.fill_(6f);                             // every block's amax 6, in any order
        // Step 1's pass makes channels 0–127 the outliers (largest first: 127, 126, …).
        layer.train();
        layer.call(cat([ones(4, 128) * (arange(128).to(ScalarType.Float32) + 100), ones(4, 128)], 1));
        layer.UpdateQuantizationState(1, 100);
        var channels = layer.OutControlChannels!;
        Assert.Equal(127, channels.Outliers[0].item<long>());
        var fp4 = channels.Fp4.data<long>().ToArray();
        int position = Array.IndexOf(fp4, 200L);

        // Column 3 (an outlier) and column 200 (FP4) both cross a midpoint every step; 10 snapshots, 11–13 track, 14 resets.
        Tensor before = layer.weight.detach().clone();
        for (int step = 2; step <= 14; step++)
        {
            float w = step % 2 == 0 ? 1.26f : 1.24f;
            using (no_grad()) { layer.weight[.., 3] = tensor(w); layer.weight[.., 200] = tensor(w); }
            before = layer.weight.detach().clone();
            layer.UpdateQuantizationState(step, 100);
        }
        Assert.Equal(1, layer.get_buffer("oscireset_fp4_part")!.item<long>());
        // The FP4 column is reset to Q2 of the gathered FP4 part, bit for bit; the outlier column keeps 1.26.
        var expected = Quantizer.Quantize(before.index_select(1, channels.Fp4), recipe.Q2.Spec);
        Assert.True(layer.weight.detach()[.., 200].eq(expected[.., position]).all().item<bool>());
        Assert.NotEqual(1.26f, At(layer.weight, 0, 200));
        Assert.True(layer.weight.detach()[.., 3].eq(1.26f).all().item<bool>());
        var others = ones(K, dtype: ScalarType.Bool); others[200] = tensor(false);
        Assert.True(layer.weight.detach().index_select(1, others.nonzero().squeeze(1)).eq(before.index_select(1, others.nonzero().squeeze(1))).all().item<bool>());
        // Only the FP4 part's K − k columns hold accumulators.
        Assert.Equal(0f, layer.get_buffer("oscireset_prev_w")![.., 128..].abs().sum().item<float>());
    }

    [Fact]
    public void A_window_that_does_not_fit_its_period_is_rejected()
    {
        var v2 = Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true };
        Assert.Throws<ArgumentException>(() => new QLinear(128, 128, v2 with { OsciResetPeriod = 10, OsciResetWindow = 9 }));
        Assert.Throws<ArgumentException>(() => new QLinear(128, 128, v2 with { OsciResetWindow = 0 }));
        using var fits = new QLinear(128, 128, v2 with { OsciResetPeriod = 10, OsciResetWindow = 8 });
    }
}
