using TetraJet;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The training protocol on CUDA: a <see cref="QuantizedTraining"/> loop saved after 4 steps and loaded into a fresh
/// CUDA model (optimizer built before the load, as TaskTrainer does) continues bit for bit like 8 straight steps;
/// the layers' counters stay on the CPU; a plain optimizer loop is stopped at its second step.
/// </summary>
static class TrainingChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        yield return Resume("TetraJet + Q-EMA", Recipe.Get(RecipeId.TetraJet) with { QEma = true, EmaDecay = 0.9 }, device);
        yield return Resume("TetraJet-v2 + OsciReset", Recipe.Get(RecipeId.TetraJetV2) with { OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 4, OsciResetWindow = 2 }, device);
        yield return Resume("TetraJet + Q-Ramping", Recipe.Get(RecipeId.TetraJet) with { QRamping = true }, device);
        yield return ProtocolCheck(device);
    }

    static nn.Module<Tensor, Tensor> Model(Recipe recipe, int seed, Device device)
    {
        manual_seed(seed);
        var model = nn.Sequential(("up", new QLinear(256, 512, recipe, name: "up")), ("act", nn.GELU()), ("down", new QLinear(512, 256, recipe, name: "down")));
        model.to(device);
        return model;
    }

    static Tensor Loss(nn.Module<Tensor, Tensor> model, long step, Device device)
    {
        var g = new Generator((ulong)step + 7);
        var x = randn(64, 256, generator: g);
        return nn.functional.mse_loss(model.call(x.to(device)), x.flip(1).to(device));
    }

    static QuantizedTrainingOptions Options => new()
    {
        TotalSteps = 8, LearningRateAt = QuantizedTrainingOptions.WarmupCosine(3e-3, 2, 8), WeightDecay = 0.05, ClipGradNorm = 1, StepsPerEpoch = 4,
    };

    static List<float> Train(nn.Module<Tensor, Tensor> model, QuantizedTraining training, long from, long to, Device device)
    {
        var losses = new List<float>();
        for (long step = from; step < to; step++)
        {
            using var scope = NewDisposeScope();
            long k = 0;
            if (training.CalibrationDue) training.Calibrate(() => Loss(model, 100 + step + k++, device));
            training.ZeroGrad();
            var loss = Loss(model, step, device);
            losses.Add(loss.item<float>());
            loss.backward();
            training.Step();
        }
        return losses;
    }

    static (string, bool, string) Resume(string name, Recipe recipe, Device device)
    {
        try
        {
            using var straight = Model(recipe, 1, device);
            using var straightTraining = new QuantizedTraining(straight, Options);
            var expected = Train(straight, straightTraining, 0, 8, device);

            using var first = Model(recipe, 1, device);
            using var firstTraining = new QuantizedTraining(first, Options);
            var losses = Train(first, firstTraining, 0, 4, device);
            var modelBytes = new MemoryStream();
            first.save(modelBytes);
            var optimizerBytes = new MemoryStream();
            firstTraining.SaveOptimizer(new BinaryWriter(optimizerBytes));

            using var resumed = Model(recipe, 2, device);
            using var resumedTraining = new QuantizedTraining(resumed, Options);   // before the load, as TaskTrainer.Resume
            resumed.load(new MemoryStream(modelBytes.ToArray()));
            resumedTraining.LoadOptimizer(new BinaryReader(new MemoryStream(optimizerBytes.ToArray())));
            losses.AddRange(Train(resumed, resumedTraining, 4, 8, device));

            var a = straight.state_dict();
            var b = resumed.state_dict();
            var differing = a.Keys.Where(k => !b.ContainsKey(k) || !a[k].cpu().eq(b[k].cpu()).all().item<bool>()).ToList();
            var countersOnGpu = b.Where(kv => kv.Key.EndsWith(QLinear.CountersName, StringComparison.Ordinal) && kv.Value.device_type != DeviceType.CPU).Select(kv => kv.Key).ToList();
            bool weightsOnGpu = resumed.parameters().All(p => p.device_type == DeviceType.CUDA);
            bool ok = losses.SequenceEqual(expected) && differing.Count == 0 && countersOnGpu.Count == 0 && weightsOnGpu;
            return ($"QuantizedTraining resume on CUDA, {name}", ok,
                $"losses equal: {losses.SequenceEqual(expected)}; state-dict entries differing: {differing.Count} ({string.Join(", ", differing.Take(3))}); " +
                $"counters off the CPU: {countersOnGpu.Count}; parameters on CUDA: {weightsOnGpu}");
        }
        catch (Exception e)
        {
            return ($"QuantizedTraining resume on CUDA, {name}", false, $"{e.GetType().Name}: {e.Message}");
        }
    }

    static (string, bool, string) ProtocolCheck(Device device)
    {
        using var model = Model(Recipe.Get(RecipeId.TetraJet) with { QEma = true }, 3, device);
        using var opt = optim.AdamW(model.parameters(), lr: 1e-3);
        opt.zero_grad();
        Loss(model, 0, device).backward();
        opt.step();
        try
        {
            Loss(model, 1, device);
            return ("a plain optimizer loop with Q-EMA on CUDA stops at its second step", false, "the second training forward did not throw");
        }
        catch (InvalidOperationException e)
        {
            bool ok = e.Message.Contains("QuantizedTraining", StringComparison.Ordinal);
            return ("a plain optimizer loop with Q-EMA on CUDA stops at its second step", ok, e.Message);
        }
    }
}
