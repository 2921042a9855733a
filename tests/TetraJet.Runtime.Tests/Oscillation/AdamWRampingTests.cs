using TetraJet.Optim;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Oscillation;

public class AdamWRampingTests
{
    static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y) Problem(int seed)
    {
        manual_seed(seed);
        var model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4));
        return (model, randn(64, 16), randn(64, 4));
    }

    [Fact]
    public void With_all_periods_one_it_is_TorchSharp_AdamW_bit_for_bit()
    {
        var (a, x, y) = Problem(1);
        var (b, _, _) = Problem(1);
        var ours = new AdamWRamping(a.parameters(), lr: 1e-2, beta1: 0.9, beta2: 0.95, weightDecay: 0.1);
        var theirs = optim.AdamW(b.parameters(), lr: 1e-2, beta1: 0.9, beta2: 0.95, weight_decay: 0.1);
        for (int step = 0; step < 20; step++)
        {
            ours.zero_grad(); theirs.zero_grad();
            nn.functional.mse_loss(a.call(x), y).backward();
            nn.functional.mse_loss(b.call(x), y).backward();
            ours.step(); theirs.step();
        }
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            Assert.True(pa.eq(pb).all().item<bool>(), "parameters differ from TorchSharp's AdamW");
    }

    [Fact]
    public void A_period_map_updates_exactly_the_due_elements_with_accumulated_gradients()
    {
        var p = new TorchSharp.Modules.Parameter(zeros(4));
        var opt = new AdamWRamping([p], lr: 0.1, weightDecay: 0);
        opt.SetPeriod(p, tensor(new[] { 1, 2, 3, 1 }));
        var g = tensor(new[] { 1f, 1f, 1f, -1f });
        var before = new List<float[]>();
        for (int step = 1; step <= 3; step++)
        {
            p.grad = g.clone();
            var prev = p.detach().clone();
            opt.step();
            var moved = p.detach().ne(prev).data<bool>().ToArray();
            bool[] expected = step switch
            {
                1 => [true, false, false, true],
                2 => [true, true, false, true],
                _ => [true, false, true, true],
            };
            Assert.Equal(expected, moved);
        }
        // Element 1 updated once at step 2 with ĝ = 1 accumulated over 2 steps, scaled by step_acc = 2:
        // m = 0.1, v = 0.001 at t = 2 → update = 0.1·2·(0.1/0.19)/(√(0.001/(1−0.999²)) + 1e-8).
        double t = 2, m = 0.1, v = 0.001, bc1 = 1 - Math.Pow(0.9, t), bc2 = 1 - Math.Pow(0.999, t);
        double expectedW1 = -0.1 * 2 * (m / bc1) / (Math.Sqrt(v) / Math.Sqrt(bc2) + 1e-8);
        Assert.Equal(expectedW1, p[1].item<float>(), 5);
    }

    [Fact]
    public void Calibration_restores_model_and_optimizer_bit_for_bit_and_sets_periods()
    {
        manual_seed(4);
        var up = new QLinear(64, 64, Recipe.TetraJet, name: "up");
        var head = nn.Linear(64, 4);
        var model = nn.Sequential(("up", up), ("act", nn.GELU()), ("head", head));
        var x = randn(32, 64); var y = randn(32, 4);
        var opt = new AdamWRamping(model.parameters(), lr: 1e-2);
        void Step()
        {
            opt.zero_grad();
            nn.functional.mse_loss(model.call(x), y).backward();
            opt.step();
        }
        for (int i = 0; i < 3; i++) Step();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var ms = new MemoryStream(); using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, true)) opt.Save(w);
        long stepCounter = up.Step;

        var report = QRampingCalibration.Calibrate(model, opt, Step, stepsPerEpoch: 100);

        const string counters = "up." + QLinear.CountersName;   // the last counter records the calibration
        foreach (var (k, v) in model.state_dict())
            Assert.True((k == counters ? v.narrow(0, 0, 4).eq(before[k].narrow(0, 0, 4)) : v.eq(before[k])).all().item<bool>(), $"{k} changed");
        Assert.Equal(0, up.CalibratedAtStep);
        Assert.Equal(stepCounter, up.Step);
        Assert.Equal(3, opt.StepCount);
        using var ms2 = new MemoryStream(); using (var w = new BinaryWriter(ms2, System.Text.Encoding.UTF8, true)) opt.Save(w);
        // The saved state differs only in the period tensor of the quantized weight.
        Assert.True(report.ContainsKey("up"));
        var period = opt.Period(up.weight);
        Assert.True(period.ge(1).all().item<bool>() && period.le(100).all().item<bool>());
        Assert.Equal(1, opt.Period(head.weight).max().item<int>());
    }

    /// <summary>
    /// Calibration as the authors run it: 31 training steps, the differences between consecutive steps' weights (30, not
    /// counting the weights from before calibration), plain AdamW during the steps, and step_acc/grad_acc carried over.
    /// The "training step" here writes planted weights, so D_FP and D_Q are known.
    /// </summary>
    [Fact]
    public void Calibration_takes_31_steps_and_30_differences_and_carries_the_accumulators_over()
    {
        var layer = new QLinear(32, 32, Recipe.TetraJet, bias: false, name: "q");
        var model = nn.Sequential(("q", layer));
        using (no_grad())
        {
            layer.weight.fill_(0.5f);
            layer.weight[.., 0] = tensor(4f);       // MXFP4 scale 2^0 in every row: RTN's midpoint between 1 and 1.5 is 1.25
            layer.weight[0, 1] = tensor(0f);        // before calibration: far from the calibration values
        }
        var opt = new AdamWRamping(model.parameters(), lr: 1e-2, weightDecay: 0);
        opt.SetPeriod(layer.weight, full_like(layer.weight, 100, dtype: ScalarType.Int32));
        var x = randn(8, 32);
        for (int i = 0; i < 3; i++)                  // three steps under period 100: accumulated, not applied
        {
            opt.zero_grad();
            layer.call(x).square().sum().backward();
            opt.step();
        }
        var stepAcc = opt.StepAccumulator(layer.weight).clone();
        var gradAcc = opt.GradientAccumulator(layer.weight).clone();
        var weightBefore = layer.weight.detach().clone();
        Assert.Equal(3f, stepAcc[0, 0].item<float>());
        Assert.True(gradAcc.abs().sum().item<float>() > 0);

        int calls = 0;
        var periodsSeen = new List<int>();
        void PlantedStep()
        {
            calls++;
            if (calls == 1)
            {
                // Calibration runs plain AdamW: every period 1, nothing accumulated.
                periodsSeen.Add(opt.Period(layer.weight).max().item<int>());
                Assert.Equal(0f, opt.StepAccumulator(layer.weight).abs().sum().item<float>());
                Assert.Equal(0f, opt.GradientAccumulator(layer.weight).abs().sum().item<float>());
            }
            using var _ = no_grad();
            // [0, 1]: 1.24 then 1.26 from the second step on: one flip (ΔQ = 0.5, Δw = 0.02) between the first two
            // steps; counting the jump from 0 before calibration would give R = 1.5 / 1.26 instead.
            layer.weight[0, 1] = tensor(calls == 1 ? 1.24f : 1.26f);
            // [0, 2]: 1.24 until the 31st step, which flips it: seen only if the calibration takes 31 steps.
            layer.weight[0, 2] = tensor(calls == 31 ? 1.26f : 1.24f);
        }
        QRampingCalibration.Calibrate(model, opt, PlantedStep, stepsPerEpoch: 1000);

        Assert.Equal(31, calls);
        Assert.Equal(new[] { 1 }, periodsSeen);
        // One flip: D_Q = 0.5, D_FP = 0.02, period = ⌊(0.5/16)/0.02⌋·5 + 1 = 6; elements that never moved: 1.
        var period = opt.Period(layer.weight);
        Assert.Equal(6, period[0, 1].item<int>());
        Assert.Equal(6, period[0, 2].item<int>());
        Assert.Equal(1, period[0, 3].item<int>());
        // Carried over: the weights, step_acc and grad_acc are those from before calibration, bit for bit.
        Assert.True(layer.weight.detach().eq(weightBefore).all().item<bool>());
        Assert.True(opt.StepAccumulator(layer.weight).eq(stepAcc).all().item<bool>());
        Assert.True(opt.GradientAccumulator(layer.weight).eq(gradAcc).all().item<bool>());
        // An element whose count (3) is past its new period updates at the next multiple: [0, 3] (period 1) at once,
        // [0, 1] (period 6, step_acc 3) three steps later.
        var w01 = layer.weight[0, 1].item<float>();
        var w03 = layer.weight[0, 3].item<float>();
        for (int i = 1; i <= 3; i++)
        {
            opt.zero_grad();
            layer.call(x).square().sum().backward();
            opt.step();
            Assert.NotEqual(w03, layer.weight[0, 3].item<float>());
            w03 = layer.weight[0, 3].item<float>();
            if (i < 3) Assert.Equal(w01, layer.weight[0, 1].item<float>());
        }
        Assert.NotEqual(w01, layer.weight[0, 1].item<float>());
        Assert.Equal(0f, opt.StepAccumulator(layer.weight)[0, 1].item<float>());
    }
}
