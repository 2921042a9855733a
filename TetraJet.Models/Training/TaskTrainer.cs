using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>How a task is trained: the run's length and the optimizer settings of <see cref="TaskTrainer"/>.</summary>
public sealed record TrainSettings
{
    public required long TotalSteps { get; init; }
    /// <summary>Peak learning rate: linear warmup over <see cref="WarmupFraction"/> of the steps, then cosine decay to zero.</summary>
    public required double PeakLearningRate { get; init; }
    public double WarmupFraction { get; init; } = 0.05;
    /// <summary>AdamW's decoupled weight decay on the parameters the task decays.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Gradient-norm clipping threshold; 0 is off.</summary>
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Data parallelism: compare the ranks' weights every this many steps (0: only at the start).</summary>
    public int CheckWeightsEvery { get; init; } = 100;

    public long WarmupSteps => (long)Math.Max(1, Math.Round(WarmupFraction * TotalSteps));
}

/// <summary>One training step's numbers.</summary>
/// <param name="Step">The step just taken, counted from 1.</param>
/// <param name="Loss">The batch loss before the step; not finite when the step was not taken.</param>
/// <param name="Correct">Correct predictions in the batch (classifiers).</param>
/// <param name="GradNorm">Gradient norm before clipping (0 without clipping); not finite when the step was skipped.</param>
/// <param name="CalibrationMeanPeriod">Under Q-Ramping, when this step began an epoch: the mean calibrated period.</param>
public sealed record StepResult(long Step, float Loss, long? Correct, double LearningRate, double GradNorm, double? CalibrationMeanPeriod)
{
    /// <summary>Whether the step was taken: a finite loss and gradient.</summary>
    public bool Finite => float.IsFinite(Loss) && double.IsFinite(GradNorm);
}

/// <summary>
/// The step protocol of <c>tetrajet train</c> as library code: a task's batch of each step, the loss, backward and a
/// <see cref="QuantizedTraining"/> step (AdamW with the task's β₂ and weight decay, warmup-cosine learning rate,
/// clipping, the quantization update, Q-Ramping's calibration at each epoch's first step), and checkpoints that
/// resume bit-exactly. What to print and where to write metrics is the caller's.
/// </summary>
public sealed class TaskTrainer : IDisposable
{
    readonly Device _device;

    public ITrainTask Task { get; }
    public TrainSettings Settings { get; }
    public QuantizedTraining Training { get; }

    /// <summary>Data parallelism of this rank, or null for one process.</summary>
    public Distributed.DataParallel? Parallel { get; }

    /// <summary>
    /// Moves the task's model to <paramref name="device"/> and builds its optimizer. With a <paramref name="communicator"/>
    /// this is one rank of a data-parallel run: <see cref="Task"/> gives the rank's shard of each batch
    /// (<see cref="ShardedTask"/>), losses and counts are combined over the ranks and gradients averaged
    /// (<see cref="Distributed.DataParallel"/>); the ranks' state is made identical before the first step (after any
    /// <see cref="Resume"/>).
    /// </summary>
    public TaskTrainer(ITrainTask task, TrainSettings settings, Device device, Distributed.ICommunicator? communicator = null)
    {
        Task = communicator is null ? task : new ShardedTask(task, communicator.Rank, communicator.WorldSize);
        Settings = settings;
        _device = device;
        task.Net.to(device);
        // After the move: the plan holds the parameters as they are on the device.
        var parallel = Parallel = communicator is null ? null
            : new Distributed.DataParallel(task.Net, communicator) { CheckEvery = settings.CheckWeightsEvery };
        Training = new QuantizedTraining(task.Net, new QuantizedTrainingOptions
        {
            TotalSteps = settings.TotalSteps,
            LearningRate = settings.PeakLearningRate,
            LearningRateAt = QuantizedTrainingOptions.WarmupCosine(settings.PeakLearningRate, settings.WarmupSteps, settings.TotalSteps),
            Beta2 = task.Beta2,
            WeightDecay = settings.WeightDecay,
            Decays = (name, p) => task.Decays(name, p),
            ClipGradNorm = settings.ClipNorm,
            StepsPerEpoch = task.StepsPerEpoch,
            DataParallel = parallel,
        });
    }

    /// <summary>Steps taken so far (0 for a new run; the checkpoint's step after <see cref="Resume"/>).</summary>
    public long Step => Training.CompletedSteps;

    /// <summary>
    /// Trains one step. When the loss or the gradient is not finite nothing changes and <see cref="StepResult.Finite"/>
    /// is false: stop there, the weights are still those of the last good step.
    /// </summary>
    public StepResult TrainStep()
    {
        if (Parallel is { Started: false }) Parallel.Start();
        long step = Step;
        var net = Task.Net;
        double? period = null;
        if (Training.CalibrationDue)
        {
            // The epoch's first batches, as the run itself will see them; the calibration undoes its steps.
            long k = 0;
            var periods = Training.Calibrate(() =>
            {
                var (x, y) = Task.Batch(step + k++);
                return Task.Loss(net.call(x.to(_device)), y.to(_device)).Loss;
            });
            period = periods.Values.DefaultIfEmpty(1).Average();
        }
        double lr = Training.LearningRate;
        using var scope = NewDisposeScope();
        var (input, target) = Task.Batch(step);
        var (loss, correctCount) = Task.Loss(net.call(input.to(_device)), target.to(_device));
        // Backward is queued before the loss and the count are read, so that on a GPU reading them does not leave the
        // device idle while the host queues backward. A non-finite loss then has gradients too, but no step uses them:
        // the next step zeroes them, and backward changes nothing a later step reads.
        Training.ZeroGrad();
        loss.backward();
        // Under data parallelism: the mean over the ranks (their shards are equal), so every rank decides alike.
        float value = Parallel is null ? loss.item<float>() : (float)Parallel.Mean(loss);
        long? correct = correctCount?.item<long>();
        if (Parallel is not null && correct is long c) correct = Parallel.Sum(c, _device);
        double norm = float.IsFinite(value) ? Training.Step() : 0;
        return new StepResult(step + 1, value, correct, lr, norm, period);
    }

    /// <summary>A checkpoint of the current state; <paramref name="header"/> gets the step and the RNG state filled in.</summary>
    public Checkpoint Capture(CheckpointHeader header)
    {
        var model = new MemoryStream();
        Task.Net.save(new BinaryWriter(model));
        var optimizer = new MemoryStream();
        Training.SaveOptimizer(new BinaryWriter(optimizer));
        var tracking = new MemoryStream();
        Task.Net.SaveOscillationTracking(new BinaryWriter(tracking));
        using var rng = get_rng_state();
        return new Checkpoint
        {
            Header = header with
            {
                Format = Checkpoint.FormatVersion,
                Step = Step,
                TotalSteps = Settings.TotalSteps,
                Gpus = Parallel?.WorldSize ?? 1,
                TorchRngState = Convert.ToBase64String(rng.data<byte>().ToArray()),
            },
            ModelState = model.ToArray(),
            OptimizerState = optimizer.ToArray(),
            TrackingState = tracking.ToArray(),
        };
    }

    /// <summary>
    /// Continues from <paramref name="checkpoint"/>: model (with the layers' counters), optimizer, oscillation windows
    /// and libtorch's CPU generator. Call it after <c>TrackOscillation</c> if the run tracks.
    /// </summary>
    public void Resume(Checkpoint checkpoint)
    {
        if (checkpoint.Header.Format < 2)
            throw new CheckpointException($"the checkpoint is format {checkpoint.Header.Format}, written before layer counters were saved: " +
                "its random streams cannot be continued exactly. Start a new run (Checkpoint.LoadModel still reads its weights)");
        var config = JsonSerializer.Serialize(Task.Config);
        if (checkpoint.Header.ModelConfig != config)
            throw new CheckpointException($"the checkpoint has model config {checkpoint.Header.ModelConfig} but this run builds {config}");
        checkpoint.LoadModel(Task.Net);
        try
        {
            Training.LoadOptimizer(new BinaryReader(new MemoryStream(checkpoint.OptimizerState)));
            Task.Net.LoadOscillationTracking(new BinaryReader(new MemoryStream(checkpoint.TrackingState)));
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or EndOfStreamException or InvalidOperationException)
        {
            throw new CheckpointException($"the checkpoint does not fit this run ({e.Message})");
        }
        using var rng = tensor(Convert.FromBase64String(checkpoint.Header.TorchRngState), ScalarType.Byte);
        set_rng_state(rng);
        if (Step != checkpoint.Header.Step)
            throw new CheckpointException($"the checkpoint's layers have taken {Step} steps, its header says {checkpoint.Header.Step}");
    }

    public void Dispose() => Training.Dispose();
}
