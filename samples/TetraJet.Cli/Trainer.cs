using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TetraJet.Models;
using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// <c>tetrajet train</c>: checks the options, owns the run folder (lock, metrics.csv, TensorBoard events,
/// oscillation.csv, checkpoints, summary, plot) and shows progress. The training itself is
/// <see cref="TaskTrainer"/>'s, in TetraJet.Models.
/// </summary>
public static class Trainer
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    const string OscillationCsv = "oscillation.csv", OscillationHeader = "step,window_steps,rate_of_change,oscillating_fraction,mean_d_fp,mean_d_q";
    // Loaded data sets, reused by later runs in the same process (tests run many short trainings).
    static readonly Dictionary<string, FashionMnist> ImageCache = [];
    static readonly Dictionary<string, TextCorpus> TextCache = [];

    /// <summary>Defaults per model and size (tuned for tiny-cpu on two CPU cores; docs/TRAINING.md).</summary>
    internal sealed record Defaults(int Batch, double Lr, double WeightDecay, double LabelSmoothing, double? Epochs, int? Steps, int? EvalEvery);

    internal static Defaults DefaultsFor(string model, string size) => (model, size) switch
    {
        ("vit", "tiny-cpu") => new(64, 1e-3, 0.05, 0.1, Epochs: 3, Steps: null, EvalEvery: null),
        ("vit", _) => new(128, 5e-4, 0.05, 0.1, Epochs: 10, Steps: null, EvalEvery: null),
        ("gpt", "tiny-cpu") => new(16, 3e-3, 0.1, 0, Epochs: null, Steps: 400, EvalEvery: 100),
        ("gpt", "70m") => new(32, 6e-4, 0.1, 0, Epochs: null, Steps: 2000, EvalEvery: 250),
        _ => new(32, 3e-4, 0.1, 0, Epochs: null, Steps: 2000, EvalEvery: 250),
    };

    public static int Run(TrainOptions o, TextWriter stdout, TextWriter stderr, Interruption? interruption = null)
    {
        // --gpus: this process only starts and watches the ranks; started as a rank, it trains on its GPU.
        if (o.Gpus is not null) return DataParallelLauncher.Run(o, stdout, stderr, interruption);
        var rank = DataParallelRank.FromEnvironment(o);

        // 1. Everything that can be checked without touching the disk or loading data.
        if (o.Model is not ("vit" or "gpt")) throw new UsageException($"unknown model '{o.Model}'; use vit or gpt");
        var sizes = o.Model == "vit" ? VitConfig.Sizes : GptConfig.Sizes;
        if (!sizes.Contains(o.Size)) throw new UsageException($"unknown {o.Model} size '{o.Size}'; use {string.Join(", ", sizes)}");
        var recipe = o.BuildRecipe();
        var device = rank is not null ? DataParallelRank.Device(rank) : o.Device switch
        {
            "cpu" => CPU,
            "cuda" => cuda.is_available() ? CUDA : throw new UsageException("--device cuda: TorchSharp sees no CUDA GPU (torch.cuda.is_available() is false); use --device cpu or install a CUDA libtorch"),
            _ => throw new UsageException($"unknown device '{o.Device}'; use cpu or cuda"),
        };
        _ = o.OverlapsBackward;   // a bad --overlap is a usage error before any data loads
        if (PrecisionOf(o, device) is not ("fp32" or "bf16")) throw new UsageException($"unknown precision '{o.Precision}'; use fp32 or bf16");
        var d = DefaultsFor(o.Model, o.Size);
        int batch = o.Batch ?? d.Batch;
        double lr = o.Lr ?? d.Lr, wd = o.WeightDecay ?? d.WeightDecay, smoothing = o.LabelSmoothing ?? d.LabelSmoothing;
        if (batch <= 0) throw new UsageException("--batch must be positive");
        if (!(lr > 0) || double.IsInfinity(lr)) throw new UsageException("--lr must be a positive number");
        if (o.Steps is <= 0) throw new UsageException("--steps must be positive");
        if (o.Epochs is double ep && !(ep > 0)) throw new UsageException("--epochs must be positive");
        if (o.Steps is not null && o.Epochs is not null) throw new UsageException("give --steps or --epochs, not both");
        if (o.EvalEvery is <= 0 || o.CheckpointEvery is <= 0 || o.StopAfter is <= 0 || o.ProfileStep is <= 0)
            throw new UsageException("--eval-every, --checkpoint-every, --stop-after and --profile-step must be positive");
        if (!(wd >= 0) || !(smoothing is >= 0 and < 1)) throw new UsageException("--weight-decay must be ≥ 0 and --label-smoothing in [0, 1)");
        if (!(o.ClipNorm >= 0)) throw new UsageException($"--clip {o.ClipNorm.ToString(Inv)}: use 0 (no clipping) or a positive gradient norm");
        if (o.LogEvery <= 0) throw new UsageException("--log-every must be positive");
        if (o.ProfileStep is not null && device.type != DeviceType.CUDA) throw new UsageException("--profile-step needs --device cuda (it marks a step for Nsight Compute)");
        if (o.NoiseEvery < 0) throw new UsageException("--noise-every must be 0 (off) or positive");
        var augment = ParseAugment(o.Augment);
        if (rank is { IsRankZero: false }) return DataParallelRank.Follow(o, recipe, device, batch, lr, wd, smoothing, augment, d, rank);

        // 2. The run folder: held by this run from here on; what it holds decides between new, resumed and restarted.
        var dir = o.OutDir;
        var ckptPath = Path.Combine(dir, Checkpoint.FileName);
        if (File.Exists(dir)) throw new UsageException($"--out {dir} is a file; choose a folder");
        var folderLock = Directory.Exists(dir) ? RunLock.Acquire(dir) : null;
        try
        {
            bool holdsRun = HoldsRun(dir), hasCheckpoint = File.Exists(ckptPath);
            if (!o.Resume && holdsRun)
                throw new UsageException(hasCheckpoint
                    ? $"{dir} already holds a run; pass --resume to continue it, or choose another --out"
                    : $"{dir} holds a run that stopped before its first checkpoint; pass --resume to start it over there, or choose another --out");
            if (o.Resume && !holdsRun)
                throw new UsageException($"--resume: {dir} has no checkpoint and no run to start over; drop --resume to start a new run there");
            Checkpoint? ckpt = null;
            if (o.Resume && hasCheckpoint)
            {
                try { ckpt = Checkpoint.Read(ckptPath); }
                catch (CheckpointException e) { throw new UsageException(e.Message); }
                var h = ckpt.Header;
                if (h.Model != o.Model || h.Size != o.Size || h.RecipeDescription != recipe.Describe())
                    throw new UsageException($"checkpoint in {dir} is {h.Model} {h.Size} with recipe {Describe(h.RecipeDescription)}, not {o.Model} {o.Size} with {Describe(recipe.Describe())}; repeat the original flags or choose another --out");
                if (h.Seed != o.Seed || h.Batch != batch)
                    throw new UsageException($"checkpoint in {dir} was trained with --seed {h.Seed} --batch {h.Batch}; pass the same values to resume");
                if (h.Format < 2)
                    throw new UsageException($"checkpoint in {dir} was written by an earlier version (format {h.Format}) that did not save the layers' random-stream counters, so it cannot continue exactly; start a new run in another --out");
            }
            return Train(o, recipe, device, batch, lr, wd, smoothing, augment, d, dir, ckpt, restart: o.Resume && !hasCheckpoint, ref folderLock, stdout, stderr, interruption, rank);
        }
        finally
        {
            folderLock?.Dispose();
        }
    }

    /// <summary>--precision, or its default for the device: bf16 on CUDA, fp32 on the CPU.</summary>
    internal static string PrecisionOf(TrainOptions o, Device device) => o.Precision ?? (device.type == DeviceType.CUDA ? "bf16" : "fp32");

    static int Train(TrainOptions o, Recipe recipe, Device device, int batch, double lr, double wd, double smoothing, Augment augment, Defaults d,
        string dir, Checkpoint? ckpt, bool restart, ref RunLock? folderLock, TextWriter stdout, TextWriter stderr, Interruption? interruption,
        TetraJet.Distributed.DistributedEnvironment? rank)
    {
        var ckptPath = Path.Combine(dir, Checkpoint.FileName);
        var metricsPath = Path.Combine(dir, MetricsCsv.FileName);
        var oscillationPath = Path.Combine(dir, OscillationCsv);
        var noisePath = Path.Combine(dir, NoiseMonitor.FileName);

        // 3. Data, model and trainer (data errors are bad input too).
        manual_seed(o.Seed);
        using ITrainTask task = BuildTask(o, recipe, batch, smoothing, augment);
        long total = TotalSteps(o, d, task);
        int evalEvery = o.EvalEvery ?? d.EvalEvery ?? task.StepsPerEpoch;
        int ckptEvery = o.CheckpointEvery ?? evalEvery;
        var configJson = JsonSerializer.Serialize(task.Config);
        var net = task.Net;
        using var communicator = rank is null ? null : DataParallelRank.Connect(rank, task, batch);
        using var trainer = new TaskTrainer(task, Settings(o, total, lr, wd), device, communicator);
        // Mixed precision as torch.autocast does it for linear layers; the autocast dtype is not part of the checkpoint.
        if (PrecisionOf(o, device) == "bf16") net.SetAutocast(ScalarType.BFloat16);
        net.OverlapBackward(o.OverlapsBackward);
        bool quantized = recipe.IsQuantized;
        if (quantized) net.TrackOscillation();
        var noise = new NoiseMonitor(net, o.NoiseEvery);
        long start = 0;
        double elapsedBefore = 0, trainSecondsBefore = 0;
        List<string>? keptMetrics = null, keptOscillation = null, keptNoise = null;
        if (ckpt is not null)
        {
            try { trainer.Resume(ckpt); }
            catch (CheckpointException e) { throw new UsageException($"checkpoint in {dir}: {e.Message}; choose another --out"); }
            start = trainer.Step;
            elapsedBefore = ckpt.Header.ElapsedSeconds;
            trainSecondsBefore = ckpt.Header.TrainSeconds;
            if (ckpt.Header.Gpus != (rank?.WorldSize ?? 1))
                stdout.WriteLine($"note: the checkpoint was trained on {ckpt.Header.Gpus} GPU(s) and continues on {rank?.WorldSize ?? 1}: the same batches and schedule, " +
                    "but not bit for bit the run that the original count would give (the stochastic rounding of each shard and the order of summation differ)");
            if (start >= total) throw new UsageException($"the checkpoint in {dir} is at step {start}, and this run has {total} steps; raise --steps to train further");
            // Read (and check) the history before anything is written.
            keptMetrics = File.Exists(metricsPath) ? MetricsCsv.KeepThrough(metricsPath, start) : null;
            keptOscillation = File.Exists(oscillationPath) ? RunCsv.KeepThrough(oscillationPath, OscillationHeader, "tetrajet train", start) : null;
            keptNoise = noise.KeepThrough(noisePath, start);
        }

        // 4. From here on the run folder is written.
        if (folderLock is null)
        {
            Directory.CreateDirectory(dir);
            folderLock = RunLock.Acquire(dir);
            if (HoldsRun(dir)) throw new UsageException($"{dir} already holds a run (another 'tetrajet train' just wrote it); choose another --out");
        }
        if (restart)
        {
            // The run stopped before its first checkpoint: nothing of it can be continued, so it starts over.
            foreach (var f in Directory.GetFiles(dir, TfEventsWriter.Prefix + "*").Append(metricsPath).Append(oscillationPath).Append(noisePath).Append(ckptPath + ".tmp"))
                File.Delete(f);
        }
        if (keptMetrics is not null) RunCsv.Rewrite(metricsPath, keptMetrics);
        if (keptOscillation is not null) RunCsv.Rewrite(oscillationPath, keptOscillation);
        if (keptNoise is not null) RunCsv.Rewrite(noisePath, keptNoise);
        bool newMetrics = !File.Exists(metricsPath);
        using var metrics = new StreamWriter(metricsPath, append: true);
        if (newMetrics) metrics.WriteLine(MetricsCsv.Header);
        using var tb = ckpt is null ? TfEventsWriter.Create(dir) : TfEventsWriter.Continue(dir, start);
        long paramCount = net.parameters().Sum(p => p.numel());

        var wall = Stopwatch.StartNew();
        double trainSeconds = trainSecondsBefore;
        // The second half of this process's steps, timed alone: a throughput without the first steps' kernel compilation.
        double steadyItems = 0, steadySeconds = 0;
        string title = $"{o.Model} {o.Size} {recipe.Name}";
        long lastGood = start;
        EvalResult? lastEval = null;
        var header = new CheckpointHeader
        {
            Model = o.Model, Size = o.Size, Recipe = recipe.Name, RecipeDescription = recipe.Describe(), RecipeSpec = Checkpoint.RecipeToJson(recipe),
            ModelConfig = configJson, Step = start, TotalSteps = total, Seed = o.Seed, Batch = batch,
            ElapsedSeconds = 0, TrainSeconds = 0, TorchRngState = "",
        };

        void Save()
        {
            // Everything up to this step reaches the disk before the checkpoint that says it happened.
            metrics.Flush(); tb.Flush();
            trainer.Capture(header with { ElapsedSeconds = elapsedBefore + wall.Elapsed.TotalSeconds, TrainSeconds = trainSeconds }).Write(ckptPath);
            lastGood = trainer.Step;
        }

        if (ckpt is not null) stdout.WriteLine($"{title}: resuming at step {start} of {total} from {ckptPath}");
        else stdout.WriteLine($"{title}: {paramCount:N0} parameters, {total} steps of {batch} ({task.StepsPerEpoch} steps/epoch), lr {lr.ToString(Inv)}, device {o.Device}{(rank is null ? "" : $" × {rank.WorldSize} GPUs (NCCL)")} ({PrecisionOf(o, device)}) → {dir}" +
            (restart ? " (starting over: the run there had no checkpoint yet)" : ""));

        net.train();
        long stopAt = Math.Min(total, o.StopAfter ?? long.MaxValue);
        double windowItems = 0, windowSeconds = 0;
        // Device memory in use after each step, so a run shows its footprint and any growth from step to step.
        var gpu = device.type == DeviceType.CUDA ? CudaRunner.ForDevice(Math.Max(0, (int)device.index)) : null;
        long peakMemory = 0;
        int exit = ProgressView.Run(stdout, o.Quiet, o.LogEvery, start, total, title, view =>
        {
            for (long step = start; step < stopAt; step++)
            {
                if (interruption?.Requested == true) return Interrupted(view);
                noise.Arm(step + 1);
                var stepTimer = Stopwatch.StartNew();
                // The range closes after the step's kernels have finished, so that it holds the whole step and nothing else.
                bool profiled = gpu is not null && o.ProfileStep == step + 1;
                if (profiled) { gpu!.Synchronize(); gpu.ProfilerRange(start: true); }
                var result = trainer.TrainStep();
                if (profiled) { gpu!.Synchronize(); gpu.ProfilerRange(start: false); }
                if (result.CalibrationMeanPeriod is double period)
                    view.Line($"step {step}: Q-Ramping calibrated, mean period {period.ToString("0.00", Inv)}");
                if (!result.Finite)
                {
                    metrics.Flush(); tb.Flush();
                    view.Line("");
                    string what = float.IsFinite(result.Loss) ? $"the gradient norm is not finite ({result.GradNorm.ToString(Inv)})" : $"loss is not finite ({result.Loss.ToString(Inv)})";
                    stderr.WriteLine($"error: {what} at step {step + 1}; training stopped. " +
                        (File.Exists(ckptPath) ? $"The last good checkpoint (step {lastGood}) is kept in {ckptPath}; " : "No checkpoint was written yet; ") +
                        "lower --lr or raise --clip and --resume (or start again in another --out).");
                    return 1;
                }
                stepTimer.Stop();
                var (noiseMin, noiseMedian) = noise.Collect(step + 1, noisePath, tb, stderr.WriteLine);
                long? memory = gpu?.MemoryInUse();
                if (memory is long m) { peakMemory = Math.Max(peakMemory, m); tb.Scalar("train/device_memory_gib", m / Gib, step + 1); }
                trainSeconds += stepTimer.Elapsed.TotalSeconds;
                if (2 * (step - start) >= stopAt - start) { steadyItems += task.ItemsPerStep; steadySeconds += stepTimer.Elapsed.TotalSeconds; }
                windowItems += task.ItemsPerStep; windowSeconds += stepTimer.Elapsed.TotalSeconds;
                long done = result.Step;
                double throughput = windowItems / Math.Max(windowSeconds, 1e-9);
                if (windowSeconds > 5) { windowItems = 0; windowSeconds = 0; }
                double? trainAcc = result.Correct is long k ? (double)k / batch : null;
                EvalResult? ev = null;
                if (done % evalEvery == 0 || done == total)
                {
                    ev = lastEval = task.Evaluate(device);
                    view.Line($"step {done}/{total}  eval loss {ev.Loss.ToString("0.0000", Inv)}" +
                        (ev.Accuracy is double a ? $"  test accuracy {(100 * a).ToString("0.00", Inv)}%" : "") +
                        (ev.Perplexity is double pp ? $"  perplexity {pp.ToString("0.00", Inv)}" : ""));
                    tb.Scalar("eval/loss", ev.Loss, done);
                    if (ev.Accuracy is double acc) tb.Scalar("eval/accuracy", acc, done);
                    if (ev.Perplexity is double ppl) tb.Scalar("eval/perplexity", ppl, done);
                }
                var row = new MetricsRow(done, (double)done / task.StepsPerEpoch, result.Loss, result.LearningRate, trainAcc, ev?.Loss, ev?.Accuracy, ev?.Perplexity,
                    throughput, elapsedBefore + wall.Elapsed.TotalSeconds, noiseMin, noiseMedian);
                metrics.WriteLine(MetricsCsv.Format(row));
                tb.Scalar("train/loss", result.Loss, done);
                tb.Scalar("train/lr", result.LearningRate, done);
                tb.Scalar($"train/{task.Unit.Replace("/", "_per_")}", throughput, done);
                if (trainAcc is double ta) tb.Scalar("train/accuracy", ta, done);
                if (quantized && (done % evalEvery == 0 || done == total)) ReportOscillation(net, oscillationPath, tb, done, view);
                if (recipe.Gemm == GemmPath.FP8 && (done % evalEvery == 0 || done == total)) ReportFp8(net, tb, done, view);
                if (done % ckptEvery == 0 || done == stopAt) Save();
                var eta = TimeSpan.FromSeconds(wall.Elapsed.TotalSeconds / (done - start) * (total - done));
                var status = $"loss {result.Loss.ToString("0.0000", Inv)}" +
                    (lastEval?.Accuracy is double la ? $"  acc {(100 * la).ToString("0.0", Inv)}%" : "") +
                    (lastEval?.Perplexity is double lp ? $"  ppl {lp.ToString("0.0", Inv)}" : "") +
                    (noise.LastMin is double nm ? $"  g/n {nm.ToString("0.00", Inv)}" : "") +
                    $"  {throughput.ToString("0", Inv)} {task.Unit}" +
                    (memory is long mem ? $"  mem {(mem / Gib).ToString("0.0", Inv)} GiB" : "");
                view.Update(done, total, status, eta);
            }
            return 0;
        });

        int Interrupted(ProgressView view)
        {
            long step = trainer.Step;
            if (step > lastGood) Save();
            else { metrics.Flush(); tb.Flush(); }
            view.Line(step > 0 || File.Exists(ckptPath)
                ? $"{interruption!.Signal}: stopped after step {step} of {total}, which the checkpoint {ckptPath} holds. Continue with the same command and --resume"
                : $"{interruption!.Signal}: stopped before the first step; nothing to keep. Start again with the same command and --resume");
            return interruption.ExitCode;
        }

        metrics.Flush(); tb.Flush();
        if (exit != 0) return exit;
        if (stopAt < total)
        {
            stdout.WriteLine($"stopped after step {stopAt} of {total}; continue with the same command and --resume");
            return 0;
        }

        // 5. Summary and plot.
        double wallSeconds = elapsedBefore + wall.Elapsed.TotalSeconds;
        var final = lastEval ?? task.Evaluate(device);
        var rows = MetricsCsv.Read(metricsPath);
        RunPlots.WriteCurves(Path.Combine(dir, "curves.png"), o.Model, rows, stderr);
        var summary = new RunSummary
        {
            Model = o.Model, Size = o.Size, Recipe = recipe.Name, RecipeDescription = recipe.Describe(), ModelConfig = JsonDocument.Parse(configJson).RootElement,
            Parameters = paramCount, Steps = total, Epochs = (double)total / task.StepsPerEpoch, Batch = batch, Lr = lr, WeightDecay = wd, Seed = o.Seed,
            Device = o.Device, Precision = PrecisionOf(o, device), OverlapBackward = o.OverlapsBackward, Threads = get_num_threads(), WallSeconds = wallSeconds, TrainSeconds = trainSeconds,
            Throughput = total * task.ItemsPerStep / Math.Max(trainSeconds, 1e-9), ThroughputUnit = task.Unit,
            SteadyThroughput = steadySeconds > 0 ? steadyItems / steadySeconds : null,
            PeakDeviceMemoryGiB = gpu is null ? null : Math.Round(peakMemory / Gib, 2),
            EvalLoss = final.Loss, EvalAccuracy = final.Accuracy, EvalPerplexity = final.Perplexity,
            Fp8Fallbacks = recipe.Gemm == GemmPath.FP8 ? Fp8Fallbacks(net) : null,
        };
        var summaryTmp = Path.Combine(dir, "summary.json.tmp");
        File.WriteAllText(summaryTmp, JsonSerializer.Serialize(summary, RunSummary.Json));
        File.Move(summaryTmp, Path.Combine(dir, "summary.json"), overwrite: true);
        stdout.WriteLine($"done: {title}, {total} steps in {ProgressView.Eta(TimeSpan.FromSeconds(wallSeconds))}, " +
            $"{summary.Throughput.ToString("0", Inv)} {task.Unit}; " +
            (summary.PeakDeviceMemoryGiB is double pm ? $"peak device memory {pm.ToString("0.0", Inv)} GiB; " : "") +
            (final.Accuracy is double fa ? $"test accuracy {(100 * fa).ToString("0.00", Inv)}%" : $"validation perplexity {final.Perplexity!.Value.ToString("0.00", Inv)}") +
            $" → {dir}");
        if (task is GptTask gpt) stdout.WriteLine("sample: " + gpt.Sample("And God said", 40, o.Seed, device).ReplaceLineEndings(" "));
        return 0;
    }

    const double Gib = 1024.0 * 1024 * 1024;

    /// <summary>The run's length: --steps, else --epochs (or the defaults) over the task's epoch.</summary>
    internal static long TotalSteps(TrainOptions o, Defaults d, ITrainTask task)
    {
        long total = o.Steps ?? d.Steps ?? (long)Math.Max(1, Math.Round((o.Epochs ?? d.Epochs ?? 1) * task.StepsPerEpoch));
        if (o.Epochs is double e2) total = Math.Max(1, (long)Math.Round(e2 * task.StepsPerEpoch));
        return total;
    }

    internal static TrainSettings Settings(TrainOptions o, long total, double lr, double wd) =>
        new() { TotalSteps = total, PeakLearningRate = lr, WarmupFraction = o.WarmupFraction, WeightDecay = wd, ClipNorm = o.ClipNorm };

    internal static Augment ParseAugment(string text) => text switch
    {
        "none" => Augment.None,
        "flip" => Augment.Flip,
        "crop" => Augment.Crop,
        "crop+flip" or "flip+crop" => Augment.Crop | Augment.Flip,
        _ => throw new UsageException($"unknown augmentation '{text}'; use none, flip, crop or crop+flip"),
    };

    /// <summary>Per layer and slot Q1–Q6: [lines computed exactly, lines in all] since the run (or its resume) started.</summary>
    static Dictionary<string, Dictionary<string, long[]>> Fp8Fallbacks(nn.Module<Tensor, Tensor> net) =>
        net.QuantizedLinears().ToDictionary(l => l.Path, l =>
        {
            var counts = l.Layer.Fp8Fallbacks();
            return Enumerable.Range(1, 6).ToDictionary(i => "Q" + i, i => new[] { counts[i].Exact, counts[i].Total });
        });

    /// <summary>FP8 GEMMs: the operand lines (a row along the reduction axis) computed exactly, per slot over all layers.</summary>
    static void ReportFp8(nn.Module<Tensor, Tensor> net, TfEventsWriter tb, long step, ProgressView view)
    {
        var exact = new long[7];
        var total = new long[7];
        bool used = false;
        foreach (var (_, layer) in net.QuantizedLinears())
        {
            used |= layer.LastForwardUsedFp8;
            var c = layer.Fp8Fallbacks();
            for (int i = 1; i <= 6; i++) { exact[i] += c[i].Exact; total[i] += c[i].Total; }
        }
        long all = total.Sum(), flagged = exact.Sum();
        if (all > 0) tb.Scalar("fp8/exact_fraction", (double)flagged / all, step);
        view.Line(!used && all == 0 ? $"step {step}: FP8 GEMMs asked for, but no layer took them (device or shapes: docs/GPU.md)"
            : $"step {step}: FP8 GEMMs, lines computed exactly: " + string.Join(", ", Enumerable.Range(1, 6).Select(i => $"Q{i} {exact[i]:N0}/{total[i]:N0}")));
    }

    /// <summary>Oscillation of the quantized weights since the last report: console, TensorBoard and oscillation.csv.</summary>
    static void ReportOscillation(nn.Module<Tensor, Tensor> net, string path, TfEventsWriter tb, long step, ProgressView view)
    {
        var m = net.OscillationSummary(reset: true);
        if (m.Steps == 0) return;
        tb.Scalar("oscillation/rate_of_change", m.RateOfChange, step);
        tb.Scalar("oscillation/oscillating_fraction", m.OscillatingFraction, step);
        tb.Scalar("oscillation/d_fp", m.MeanDfp, step);
        tb.Scalar("oscillation/d_q", m.MeanDq, step);
        bool fresh = !File.Exists(path);
        using (var w = new StreamWriter(path, append: true))
        {
            if (fresh) w.WriteLine(OscillationHeader);
            w.WriteLine(string.Join(",", step, m.Steps, m.RateOfChange.ToString("G6", Inv), m.OscillatingFraction.ToString("G6", Inv),
                m.MeanDfp.ToString("G6", Inv), m.MeanDq.ToString("G6", Inv)));
        }
        view.Line($"step {step}: r(W_Q) {m.RateOfChange.ToString("0.00000", Inv)}, oscillating {(100 * m.OscillatingFraction).ToString("0.00", Inv)}% of weights");
    }

    internal static ITrainTask BuildTask(TrainOptions o, Recipe recipe, int batch, double smoothing, Augment augment)
    {
        var images = o.Model == "vit" ? Images(o) : null;
        var text = o.Model == "gpt" ? Text(o) : null;
        try
        {
            return images is not null
                ? new VitTask(o.Size, recipe, images, batch, o.Seed, smoothing, augment)
                : new GptTask(o.Size, recipe, text!, batch, o.Seed, o.TrainSubset, o.EvalSubset);
        }
        catch (ArgumentException e) { throw new UsageException(e.Message); }   // e.g. features the recipe's format cannot block
    }

    /// <summary>A folder holds a run when it has any of the files a run writes.</summary>
    public static bool HoldsRun(string dir) =>
        Directory.Exists(dir) && (File.Exists(Path.Combine(dir, Checkpoint.FileName)) || File.Exists(Path.Combine(dir, MetricsCsv.FileName))
            || File.Exists(Path.Combine(dir, "summary.json")) || Directory.EnumerateFiles(dir, TfEventsWriter.Prefix + "*").Any());

    static string Describe(string description)
    {
        var lines = description.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var name = lines[0].Replace("Recipe ", "");
        var opts = lines.FirstOrDefault(l => l.StartsWith("options:"));
        return opts is null or "options: none" ? name : $"{name} ({opts[9..]})";
    }

    static FashionMnist Images(TrainOptions o)
    {
        var key = Path.GetFullPath(o.Data ?? DataFiles.Shipped("fashion-mnist"));
        if (o.Data is not null && File.Exists(o.Data)) throw new DataException($"{o.Data} is a file; for vit, --data must be a folder with Fashion-MNIST idx files");
        if (!ImageCache.TryGetValue(key, out var data)) ImageCache[key] = data = FashionMnist.Load(key);
        return data.Subset(o.TrainSubset ?? data.Train.Count, o.EvalSubset ?? data.Test.Count);
    }

    static TextCorpus Text(TrainOptions o)
    {
        var key = Path.GetFullPath(o.Data ?? Path.Combine(DataFiles.Shipped("kjv"), "kjv.txt.gz"));
        if (!TextCache.TryGetValue(key, out var corpus)) TextCache[key] = corpus = TextCorpus.Load(key);
        return corpus;
    }
}

/// <summary>summary.json: the final numbers of a run.</summary>
public sealed record RunSummary
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    public required string Model { get; init; }
    public required string Size { get; init; }
    public required string Recipe { get; init; }
    public required string RecipeDescription { get; init; }
    public JsonElement ModelConfig { get; init; }
    public long Parameters { get; init; }
    public long Steps { get; init; }
    public double Epochs { get; init; }
    public int Batch { get; init; }
    public double Lr { get; init; }
    public double WeightDecay { get; init; }
    public long Seed { get; init; }
    public required string Device { get; init; }
    /// <summary>fp32, or bf16 (the linear layers under bfloat16 autocast).</summary>
    public required string Precision { get; init; }
    /// <summary>--overlap: whether backward ran Q4 and Q6 on a side stream (CUDA; in line on the CPU either way).</summary>
    public bool OverlapBackward { get; init; }
    public long Threads { get; init; }
    public double WallSeconds { get; init; }
    public double TrainSeconds { get; init; }
    public double Throughput { get; init; }
    public required string ThroughputUnit { get; init; }
    /// <summary>Items per second over the second half of this process's steps, by the step timer (no compilation warm-up).</summary>
    public double? SteadyThroughput { get; init; }
    /// <summary>CUDA runs: the most device memory in use after any step (torch's cache included).</summary>
    public double? PeakDeviceMemoryGiB { get; init; }
    public double EvalLoss { get; init; }
    public double? EvalAccuracy { get; init; }
    public double? EvalPerplexity { get; init; }
    /// <summary>--gemm fp8: per layer and slot, [lines computed exactly, lines in all].</summary>
    public Dictionary<string, Dictionary<string, long[]>>? Fp8Fallbacks { get; init; }
}
