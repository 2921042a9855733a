using System.CommandLine;
using TetraJet.Models.Data;
using TetraJet.Models.Training;

namespace TetraJet.Cli;

/// <summary><c>tetrajet train | compare</c>. <see cref="Run"/> is the testable entry point.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        NativeEnvironment.PreferPassiveOpenMpWait();
        using var interruption = Interruption.FromSignals();
        return Run(args, Console.Out, Console.Error, interruption);
    }

    /// <summary>
    /// Runs the CLI with the given writers; returns the exit code: 0 ok, 1 a run stopped on a non-finite loss,
    /// 2 anything else that failed (one <c>error:</c> line, never a stack trace), 128 + signal when interrupted.
    /// </summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, Interruption? interruption = null)
    {
        var root = new RootCommand("TetraJet.NET: fully-quantized FP4 training of transformers");
        root.Subcommands.Add(TrainCommand(stdout, stderr, interruption, args));
        root.Subcommands.Add(CompareCommand(stdout, stderr));
        root.Subcommands.Add(Quantize.QuantizeCommand.Create());
        root.Subcommands.Add(ExperimentCommand.Create(stdout, stderr, interruption));
        root.Subcommands.Add(ExportCommand.Create(stdout, stderr));
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            var cmd = parsed.CommandResult.Command == root ? "" : " " + parsed.CommandResult.Command.Name;
            stderr.WriteLine($"error: {OneLine(parsed.Errors[0].Message)} (see 'tetrajet{cmd} --help')");
            return 2;
        }
        return Guard(stderr, () => parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }));
    }

    /// <summary>Turns every failure into one <c>error:</c> line and exit code 2.</summary>
    static int Guard(TextWriter stderr, Func<int> action)
    {
        try { return action(); }
        catch (UsageException e) { return Fail(e.Message); }
        catch (DataException e) { return Fail(e.Message); }
        catch (CheckpointException e) { return Fail(e.Message); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Fail(e.Message); }
        catch (Exception e) when (e is not OutOfMemoryException) { return Fail($"{e.GetType().Name}: {e.Message}"); }

        int Fail(string message)
        {
            stderr.WriteLine($"error: {OneLine(message)}");
            return 2;
        }
    }

    static string OneLine(string text) => string.Join(" ", text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    static Command TrainCommand(TextWriter stdout, TextWriter stderr, Interruption? interruption, string[] args)
    {
        var model = new Argument<string>("model") { Description = "vit (Fashion-MNIST classifier) or gpt (King James Bible language model)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "vit" };
        var recipe = new Option<string>("--recipe") { Description = "bf16, microscaling, tetrajet, nvidia-nvfp4 or tetrajet-v2", DefaultValueFactory = _ => "tetrajet" };
        var qEma = new Option<bool>("--q-ema") { Description = "Q-EMA: EMA-guided rounding of forward weights" };
        var qRamping = new Option<bool>("--q-ramping") { Description = "Q-Ramping: AdamW-Ramping for oscillating weights" };
        var osciReset = new Option<bool>("--osci-reset") { Description = "OsciReset: reset oscillating weights to their quantized value" };
        var osciResetLean = new Option<bool>("--osci-reset-lean") { Description = "memory-lean OsciReset: track only the 10% of weights nearest a rounding midpoint (implies --osci-reset)" };
        var outControl = new Option<bool>("--out-control") { Description = "OutControl: outlier channels in MXFP8" };
        var size = new Option<string>("--size") { Description = "vit: tiny-cpu, tiny, small; gpt: tiny-cpu, 70m, 150m, 370m", DefaultValueFactory = _ => "tiny-cpu" };
        var steps = new Option<int?>("--steps") { Description = "optimizer steps (default: from --epochs)" };
        var epochs = new Option<double?>("--epochs") { Description = "passes over the training data (default: tuned per model and size)" };
        var batch = new Option<int?>("--batch") { Description = "sequences or images per step" };
        var lr = new Option<double?>("--lr") { Description = "peak learning rate (linear warmup over 5% of the steps, then cosine decay to zero)" };
        var wd = new Option<double?>("--weight-decay") { Description = "decoupled AdamW weight decay on matrices (vit 0.05, gpt 0.1)" };
        var smoothing = new Option<double?>("--label-smoothing") { Description = "label smoothing (vit default 0.1, gpt 0)" };
        var clip = new Option<double>("--clip") { Description = "gradient-norm clipping threshold (0: off; negative values are refused)", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "seed for initialisation, data order and augmentation", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
        var gemm = new Option<string>("--gemm") { Description = "bf16, or fp8: on CUDA, MXFP4 recipes multiply on FP8 tensor cores, the same operands bit for bit", DefaultValueFactory = _ => "bf16" };
        var overlap = new Option<string>("--overlap") { Description = "on or off: on CUDA, backward's Q4 and Q6 on a side stream beside Q3 + Q5 and the dgrad GEMM, or in line (the same bits)", DefaultValueFactory = _ => "on" };
        var precision = new Option<string?>("--precision") { Description = "fp32, or bf16: linear layers quantize and multiply in bfloat16, weights and the rest stay float32 (default: bf16 on cuda, fp32 on cpu)" };
        var output = new Option<string?>("--out") { Description = "run folder (default runs/<model>-<recipe>)" };
        var resume = new Option<bool>("--resume") { Description = "continue the run in --out from its checkpoint (or start it over if it stopped before its first one)" };
        var data = new Option<string?>("--data") { Description = "vit: folder with Fashion-MNIST-format idx files; gpt: a UTF-8 text file (plain or .gz) of at least 320 KiB" };
        var evalEvery = new Option<int?>("--eval-every") { Description = "evaluate every N steps (default: vit once per epoch, gpt every 100 for tiny-cpu)" };
        var ckptEvery = new Option<int?>("--checkpoint-every") { Description = "write a checkpoint every N steps (default: with each evaluation)" };
        var stopAfter = new Option<int?>("--stop-after") { Description = "stop this invocation after step N (continue later with --resume)" };
        var trainSubset = new Option<int?>("--train-subset") { Description = "use only the first N training images (vit) or tokens (gpt)" };
        var evalSubset = new Option<int?>("--eval-subset") { Description = "evaluate on only the first N test images (vit) or tokens (gpt)" };
        var augment = new Option<string>("--augment") { Description = "vit training augmentation: none, flip, crop (±2 px) or crop+flip", DefaultValueFactory = _ => "flip" };
        var profileStep = new Option<int?>("--profile-step") { Description = "cuda: record step N's kernels in a profiler range (Nsight Compute with --profile-from-start off; bench/gpu-step-profile.sh)" };
        var logEvery = new Option<int>("--log-every") { Description = "without a terminal, print a progress line every N steps", DefaultValueFactory = _ => 50 };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };
        var gpus = new Option<int?>("--gpus") { Description = "data parallel on N GPUs of this host through NCCL, one process each (needs --device cuda; --batch is the whole step's, split evenly; docs/DISTRIBUTED.md)" };
        var slots = new Option<string[]>("--slot") { Description = "per-slot override Qn=FORMAT (bf16, mxfp4, nvfp4, nvfp4-tensor, mxfp8), repeatable: e.g. --slot Q1=bf16 for the ablations", DefaultValueFactory = _ => [] };
        var noiseEvery = new Option<int>("--noise-every") { Description = "measure each quantized layer's gradient-to-noise ratio every N steps (0: off; docs/DIAGNOSTICS.md)", DefaultValueFactory = _ => 50 };
        var cmd = new Command("train", "train a model with an FP4 recipe")
        {
            model, recipe, qEma, qRamping, osciReset, osciResetLean, outControl, size, steps, epochs, batch, lr, wd, smoothing, clip, seed,
            device, gemm, overlap, precision, output, resume, data, evalEvery, ckptEvery, stopAfter, profileStep, trainSubset, evalSubset, augment, logEvery, quiet, gpus,
            noiseEvery, slots,
        };
        cmd.SetAction(p =>
        {
            var options = new TrainOptions
            {
                Model = p.GetValue(model) ?? "vit", Recipe = p.GetValue(recipe)!, QEma = p.GetValue(qEma), QRamping = p.GetValue(qRamping),
                OsciReset = p.GetValue(osciReset), OsciResetLean = p.GetValue(osciResetLean), OutControl = p.GetValue(outControl), Size = p.GetValue(size)!,
                Steps = p.GetValue(steps), Epochs = p.GetValue(epochs), Batch = p.GetValue(batch), Lr = p.GetValue(lr),
                WeightDecay = p.GetValue(wd), LabelSmoothing = p.GetValue(smoothing), ClipNorm = p.GetValue(clip), Seed = p.GetValue(seed),
                Device = p.GetValue(device)!, Gemm = p.GetValue(gemm)!, Overlap = p.GetValue(overlap)!, Precision = p.GetValue(precision), Out = p.GetValue(output), Resume = p.GetValue(resume), Data = p.GetValue(data),
                EvalEvery = p.GetValue(evalEvery), CheckpointEvery = p.GetValue(ckptEvery), StopAfter = p.GetValue(stopAfter), ProfileStep = p.GetValue(profileStep),
                TrainSubset = p.GetValue(trainSubset), EvalSubset = p.GetValue(evalSubset), Augment = p.GetValue(augment)!, LogEvery = p.GetValue(logEvery), Quiet = p.GetValue(quiet),
                Gpus = p.GetValue(gpus), CommandLine = args,
                NoiseEvery = p.GetValue(noiseEvery), Slots = p.GetValue(slots) ?? [],
            };
            return Trainer.Run(options, stdout, stderr, interruption);
        });
        return cmd;
    }

    static Command CompareCommand(TextWriter stdout, TextWriter stderr)
    {
        var runs = new Argument<string[]>("runs") { Description = "run folders written by 'tetrajet train'", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "PNG to write", DefaultValueFactory = _ => Path.Combine("runs", "compare.png") };
        var cmd = new Command("compare", "plot several runs' curves in one PNG and print a table of final metrics") { runs, output };
        cmd.SetAction(p => Compare.Run(p.GetValue(runs)!, p.GetValue(output)!, stdout));
        return cmd;
    }
}
