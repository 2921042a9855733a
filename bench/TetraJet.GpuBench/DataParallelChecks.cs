using TetraJet;
using TetraJet.Distributed;
using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Data parallelism through NCCL with a world of one (the single-GPU machine): NCCL loads and sets up from the
/// rendezvous path; all-reduce (sum, max, min) of known tensors in float32, bfloat16, float64 and int64 returns them
/// bit for bit; broadcast leaves rank 0's tensor as it is; an all-reduce queued right after torch work on the default
/// stream sees that work's result; weight fingerprints are the same on the GPU and the CPU; and GPT tiny-cpu trained
/// through a world-size-1 communicator gives, step by step, the same loss bits and in the end the same weights as the
/// plain trainer (TetraJet, and TetraJet-v2 with OutControl and OsciReset inside the run) — provided the plain trainer
/// repeats itself bit for bit on this GPU; if it does not, the check bounds the difference by the plain repeat's own.
/// </summary>
static class DataParallelChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        if (!NcclCommunicator.Available)
        {
            string why;
            try { NcclLibrary.Load(); why = "loaded on retry"; }
            catch (DllNotFoundException e) { why = e.Message; }
            yield return ("dp: NCCL loads", false, why);
            yield break;
        }
        yield return ("dp: NCCL loads", true, $"version {NcclCommunicator.Version}");
        NcclCommunicator? comm = null;
        string setup = "";
        try { comm = NcclCommunicator.FromEnvironment(DistributedEnvironment.Parse(DistributedEnvironment.ForLocalRank(0, 1, 0)), TimeSpan.FromSeconds(30)); }
        catch (Exception e) { setup = $"{e.GetType().Name}: {e.Message}"; }
        yield return ("dp: communicator of one rank", comm is not null, comm is null ? setup : $"rank {comm.Rank} of {comm.WorldSize} on cuda:{comm.DeviceIndex}");
        if (comm is null) yield break;
        using (comm)
        {
            foreach (var c in Collectives(comm, device)) yield return c;
            yield return Guard("dp: fingerprint GPU = CPU", () =>
            {
                manual_seed(11);
                var w = randn(1 << 20) * 3;
                var gpu = WeightFingerprint.Of(w.to(device)).cpu();
                var cpu = WeightFingerprint.Of(w);
                return (Same(gpu, cpu), $"[{string.Join(", ", gpu.data<long>().ToArray())}]");
            });
            yield return Guard("dp: GPT tiny-cpu tetrajet, world of one = plain", () => SameRun(comm, Recipe.Get(RecipeId.TetraJet), device));
            yield return Guard("dp: GPT tiny-cpu tetrajet-v2 + OutControl + OsciReset, world of one = plain", () => SameRun(comm,
                Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 2, OutControlWindow = 3, OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 4, OsciResetWindow = 2 }, device));
        }
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static (string, bool, string) Guard(string name, Func<(bool, string)> check)
    {
        try { var (pass, detail) = check(); return (name, pass, detail); }
        catch (Exception e) { return (name, false, $"{e.GetType().Name}: {e.Message}"); }
    }

    static IEnumerable<(string, bool, string)> Collectives(NcclCommunicator comm, Device device)
    {
        foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64 })
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min })
                yield return Guard($"dp: all-reduce {op} {type} = the tensor × 1", () =>
                {
                    using var scope = NewDisposeScope();
                    var known = (arange(1 << 20, dtype: ScalarType.Float64, device: device) * 0.37 - 1000).to(type);
                    var t = known.clone();
                    comm.AllReduce(t, op);
                    return (Same(t, known), $"{t.numel():N0} elements");
                });
        yield return Guard("dp: broadcast from rank 0 keeps the tensor", () =>
        {
            var known = randn(4096, device: device);
            var t = known.clone();
            comm.Broadcast(t, 0);
            return (Same(t, known), "4,096 floats");
        });
        yield return Guard("dp: all-reduce is ordered after torch's queued work", () =>
        {
            // No synchronisation between the matmul and the collective: both are on the legacy default stream.
            var a = randn(4096, 4096, device: device);
            var expected = a.matmul(a);
            var t = a.matmul(a);
            comm.AllReduce(t, ReduceOp.Sum);
            return (Same(t, expected), "4096² matmul then all-reduce");
        });
    }

    /// <summary>GPT tiny-cpu, batch 8, 12 steps: plain <see cref="TaskTrainer"/> against one with a world-size-1 NCCL communicator.</summary>
    static (bool, string) SameRun(NcclCommunicator comm, Recipe recipe, Device device)
    {
        var corpus = TextCorpus.Load();
        (List<float> Losses, List<Tensor> Weights) Train(NcclCommunicator? c)
        {
            manual_seed(0);
            using var task = new GptTask("tiny-cpu", recipe, corpus, batch: 8, seed: 0, trainTokens: 200_000, evalTokens: 4096);
            using var trainer = new TaskTrainer(task, new TrainSettings { TotalSteps = 12, PeakLearningRate = 3e-3, WeightDecay = 0.1 }, device, c);
            task.Net.SetAutocast(ScalarType.BFloat16);
            var losses = new List<float>();
            for (int s = 0; s < 12; s++) losses.Add(trainer.TrainStep().Loss);
            return (losses, task.Net.parameters().Select(p => p.detach().cpu().clone()).ToList());
        }
        var plain = Train(null);
        var again = Train(null);
        var ranked = Train(comm);
        // Control: the plain trainer against itself. Where torch's CUDA kernels repeat bit for bit (the usual case),
        // the world-of-one run must too; where a kernel does not (e.g. an attention backward with atomics), the run
        // through NCCL may differ from the plain one by no more than the plain one differs from itself (×4 slack).
        double control = MaxDiff(plain, again), diff = MaxDiff(plain, ranked);
        bool deterministic = control == 0;
        bool pass = deterministic ? diff == 0 : diff <= 4 * control;
        return (pass, $"plain repeat: {(deterministic ? "bit-equal" : $"differs by {control:G3}")}; world of one vs plain: max |difference| {diff:G3} over losses and weights" +
            $" ({string.Join(", ", ranked.Losses.Select(l => l.ToString("0.0000")))})");
    }

    /// <summary>The largest absolute difference between two runs' losses and final weights (0: bit-equal, NaN: mismatched).</summary>
    static double MaxDiff((List<float> Losses, List<Tensor> Weights) a, (List<float> Losses, List<Tensor> Weights) b)
    {
        if (a.Losses.Count != b.Losses.Count || a.Weights.Count != b.Weights.Count) return double.NaN;
        double d = 0;
        for (int i = 0; i < a.Losses.Count; i++)
            d = BitConverter.SingleToInt32Bits(a.Losses[i]) == BitConverter.SingleToInt32Bits(b.Losses[i]) ? d : Math.Max(d, Math.Abs(a.Losses[i] - b.Losses[i]) + double.Epsilon);
        foreach (var (x, y) in a.Weights.Zip(b.Weights))
            if (!Same(x, y)) d = Math.Max(d, (x - y).abs().max().item<float>() + double.Epsilon);
        return d;
    }
}
