using TetraJet.Optim;
using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Oscillation;

/// <summary>
/// A student layer learns a teacher whose weights sit exactly on MXFP4/NVFP4 rounding midpoints, so its
/// quantized weights flip back and forth (oscillate). Each remedy must measurably lower r(W_Q).
/// </summary>
public class RemedyTests
{
    const int K = 128, N = 128, Steps = 160;

    static Tensor MidpointTeacher()
    {
        // Every 32-block holds a 4 and otherwise grid midpoints 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, all times 2^-4:
        // amax 0.25 gives the MXFP4 scale 2^-4, so they are exact midpoints of the scaled grid.
        var mids = new float[] { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, -0.75f, -2.5f };
        var w = new float[N * K];
        for (int i = 0; i < w.Length; i++) w[i] = i % 32 == 0 ? 4f : mids[(i * 7 + i / K) % mids.Length];
        return tensor(w, N, K) * 0.0625f;
    }

    static double RateOfChange(Recipe recipe, bool ramping = false)
    {
        manual_seed(3);
        var teacher = MidpointTeacher();
        var layer = new QLinear(K, N, recipe, bias: false, name: "student") { Seed = 9 };
        using (no_grad()) layer.weight.copy_(teacher + randn(N, K) * 0.002f);
        var model = nn.Sequential(("student", layer));
        var x = randn(256, K);
        var target = x.matmul(teacher.t());
        var opt = new AdamWRamping(layer.parameters(), lr: 5e-4, weightDecay: 0);
        void TrainStep()
        {
            opt.zero_grad();
            nn.functional.mse_loss(layer.call(x), target).backward();
            opt.step();
        }
        if (ramping) QRampingCalibration.Calibrate(model, opt, TrainStep, stepsPerEpoch: Steps);
        layer.TrackOscillation();
        for (int step = 1; step <= Steps; step++)
        {
            TrainStep();
            layer.UpdateQuantizationState(step, Steps);
        }
        return layer.OscillationMetrics().RateOfChange;
    }

    [Fact]
    public void Q_ema_q_ramping_and_osci_reset_each_lower_the_rate_of_change()
    {
        Recipe tj = Recipe.TetraJet;
        double baseline = RateOfChange(tj);
        double ema = RateOfChange(tj with { QEma = true, EmaDecay = 0.99 });
        double ramping = RateOfChange(tj with { QRamping = true }, ramping: true);
        Recipe v2 = Recipe.TetraJetV2;
        double v2Baseline = RateOfChange(v2);
        double reset = RateOfChange(v2 with { OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 20, OsciResetWindow = 10, OsciResetThreshold = 4 });
        var all = $"TetraJet {baseline:F4}, +Q-EMA {ema:F4}, +Q-Ramping {ramping:F4}; TetraJet-v2 {v2Baseline:F4}, +OsciReset {reset:F4}";
        Assert.True(baseline > 0.01, $"the midpoint teacher should make weights oscillate: {all}");
        Assert.True(ema < 0.8 * baseline, $"Q-EMA: {all}");
        Assert.True(ramping < 0.8 * baseline, $"Q-Ramping: {all}");
        Assert.True(reset < 0.8 * v2Baseline, $"OsciReset: {all}");
    }

    [Fact]
    public void A_weight_flipping_across_a_midpoint_has_high_ratio_and_rate()
    {
        var tracker = new TetraJet.Oscillation.OscillationTracker(new QuantSpec(QuantFormat.MXFP4));
        var w = zeros(1, 32);
        w[0, 0] = tensor(4f);                   // pins the block scale at 2^0
        for (int t = 0; t < 20; t++)
        {
            w[0, 1] = tensor(t % 2 == 0 ? 1.24f : 1.26f);   // RTN flips between 1 and 1.5
            tracker.Observe(w);
        }
        var m = tracker.Metrics(threshold: 8);
        Assert.Equal(19, m.Steps);
        Assert.Equal(1.0 / 32, m.RateOfChange, 6);           // one element of 32 changes every step
        Assert.Equal(1.0 / 32, m.OscillatingFraction, 6);    // R = 0.5 / 0.02 = 25 ≥ 8
    }

    [Fact]
    public void Ema_guided_rounding_takes_over_after_ten_ema_steps()
    {
        Recipe tj = Recipe.TetraJet;
        var layer = new QLinear(32, 32, tj with { QEma = true, EmaDecay = 0.5 }, bias: false);
        using (no_grad())
        {
            layer.weight.fill_(0);
            layer.weight[.., 0] = tensor(6f);   // scale 2^0 in every row's block
            layer.weight[.., 1] = tensor(1.3f); // RTN → 1.5
        }
        var x = zeros(1, 32); x[0, 1] = tensor(1f);
        Assert.Equal(1.5f, layer.call(x)[0, 0].item<float>());
        using (no_grad()) layer.EmaWeight![.., 1] = tensor(1.0f);    // the EMA says 1
        for (int s = 1; s < QLinear.EmaWarmupSteps; s++) layer.UpdateQuantizationState(s, 100);
        using (no_grad()) layer.EmaWeight![.., 1] = tensor(1.0f);
        Assert.Equal(1.5f, layer.call(x)[0, 0].item<float>());      // 9 EMA steps: still RTN
        layer.UpdateQuantizationState(10, 100);
        using (no_grad()) layer.EmaWeight![.., 1] = tensor(1.2f);    // EMA below the midpoint 1.25
        Assert.Equal(1.0f, layer.call(x)[0, 0].item<float>());
    }

    [Fact]
    public void Out_control_lowers_the_error_of_a_product_with_an_outlier_channel()
    {
        manual_seed(8);
        var x = randn(64, 256);
        x[.., 17] *= 200f; x[.., 130] *= 120f;                   // two outlier input channels
        var w = randn(128, 256) * 0.05f;
        var exact = x.matmul(w.t());
        double Error(Recipe r)
        {
            var layer = new QLinear(256, 128, r, bias: false);
            using (no_grad()) layer.weight.copy_(w);
            layer.train();
            layer.call(x);                                        // collects channel norms (start 0)
            layer.UpdateQuantizationState(1, 10);                // window of 1 step: fixes the channels
            using var _ = no_grad();
            var y = layer.call(x);
            return (y - exact).norm().item<float>() / exact.norm().item<float>();
        }
        Recipe v2 = Recipe.TetraJetV2;
        double plain = Error(v2);
        var withOc = v2 with { OutControl = true, OutControlStart = 0, OutControlWindow = 1 };
        double controlled = Error(withOc);
        Assert.True(controlled < 0.7 * plain, $"relative error {plain:F4} → {controlled:F4}");
        var layer2 = new QLinear(256, 128, withOc, bias: false);
        layer2.train(); layer2.call(x); layer2.UpdateQuantizationState(1, 10);
        var mask = layer2.OutlierMask!;
        Assert.Equal(128, mask.sum().item<long>());              // ⌊10% of 256⌋ = 25, rounded up to a block of 128
        Assert.Equal(new long[] { 17, 130 }, layer2.OutControlChannels!.Outliers.data<long>().ToArray()[..2]);   // largest first
    }

    [Fact]
    public void Quantization_state_is_in_the_state_dict()
    {
        var r = Recipe.Get(RecipeId.TetraJetV2) with { QEma = true, OsciReset = true, OutControl = true };
        var layer = new QLinear(256, 128, r);
        var keys = layer.state_dict().Keys.ToHashSet();
        foreach (var k in new[] { "ema_weight", "ema_steps", "outcontrol_outliers", "outcontrol_fp4", "outcontrol_norms", "outcontrol_state", "oscireset_dfp", "oscireset_dq", "oscireset_prev_w", "oscireset_prev_q", "oscireset_fp4_part" })
            Assert.Contains(k, keys);
        layer.UpdateQuantizationState(1, 10);
        var copy = new QLinear(256, 128, r);
        copy.load_state_dict(layer.state_dict());
        Assert.Equal(1, copy.EmaSteps);
        Assert.True(copy.EmaWeight!.eq(layer.EmaWeight!).all().item<bool>());
    }
}
