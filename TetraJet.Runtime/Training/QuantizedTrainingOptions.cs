using TorchSharp.Modules;

namespace TetraJet;

/// <summary>What <see cref="QuantizedTraining"/> needs to know about a run: its length, the optimizer's settings.</summary>
public sealed record QuantizedTrainingOptions
{
    /// <summary>Optimizer steps in the whole run: OsciReset starts at a fraction of it.</summary>
    public required long TotalSteps { get; init; }

    /// <summary>The learning rate when <see cref="LearningRateAt"/> is not given.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>The learning rate of step s (counted from 0), e.g. <see cref="WarmupCosine"/>; default: constant.</summary>
    public Func<long, double>? LearningRateAt { get; init; }

    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;

    /// <summary>AdamW's decoupled weight decay, on the parameters that <see cref="Decays"/> selects.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Which parameters (by path) get weight decay; default: matrices (two or more dimensions).</summary>
    public Func<string, Parameter, bool>? Decays { get; init; }

    /// <summary>Clip the gradient norm to this before each step; 0 leaves gradients alone.</summary>
    public double ClipGradNorm { get; init; }

    /// <summary>Steps per epoch: Q-Ramping recalibrates at the first step of every epoch and caps its periods at it.</summary>
    public long? StepsPerEpoch { get; init; }

    /// <summary>Ordinary training steps that a Q-Ramping calibration measures (and then undoes).</summary>
    public int CalibrationSteps { get; init; } = Optim.QRampingCalibration.DefaultSteps;

    /// <summary>
    /// Data parallelism: <see cref="QuantizedTraining.Step"/> then averages the gradients over the ranks before clipping
    /// and the optimizer step, keeps OutControl's channel choice identical on every rank and compares the ranks' weights
    /// every <see cref="Distributed.DataParallel.CheckEvery"/> steps; Q-Ramping's calibration steps are averaged the same way.
    /// Null: one process.
    /// </summary>
    public Distributed.DataParallel? DataParallel { get; init; }

    /// <summary>Linear warmup to <paramref name="peak"/> over <paramref name="warmupSteps"/> steps, then cosine decay to zero at <paramref name="totalSteps"/>.</summary>
    public static Func<long, double> WarmupCosine(double peak, long warmupSteps, long totalSteps)
    {
        long warmup = Math.Max(1, warmupSteps);
        return step =>
        {
            if (step < warmup) return peak * (step + 1) / warmup;
            double progress = (double)(step - warmup) / Math.Max(1, totalSteps - warmup);
            return peak * 0.5 * (1 + Math.Cos(Math.PI * progress));
        };
    }
}
