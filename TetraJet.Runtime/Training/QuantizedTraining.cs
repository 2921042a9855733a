using TetraJet.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The optimizer side of a quantized training loop, with everything the recipes' options need after each step:
/// AdamW (or AdamW-Ramping under Q-Ramping) with its own decoupled weight decay, the learning rate of each step,
/// optional gradient clipping, then <see cref="QuantizationExtensions.UpdateQuantizationState"/> (Q-EMA, OsciReset,
/// OutControl, oscillation tracking) with the run's length.
/// </summary>
/// <example>
/// <code>
/// using var training = new QuantizedTraining(model, new() { TotalSteps = steps, LearningRate = 2e-3 });
/// for (long s = 0; s &lt; steps; s++)
/// {
///     using var scope = NewDisposeScope();   // the step's tensors are freed when it ends
///     training.ZeroGrad();
///     nn.functional.cross_entropy(model.call(x), y).backward();
///     training.Step();
/// }
/// </code>
/// Under Q-Ramping, also set <see cref="QuantizedTrainingOptions.StepsPerEpoch"/> and call
/// <c>if (training.CalibrationDue) training.Calibrate(() =&gt; loss of a training batch);</c> before each step.
/// To resume, <c>model.load(...)</c> (the layers' counters are in the state dict) and <see cref="LoadOptimizer"/>.
/// </example>
public sealed class QuantizedTraining : IDisposable
{
    readonly List<QLinear> _layers, _ramped;
    readonly List<Parameter> _parameters;
    readonly AdamW? _adamW;
    readonly AdamWRamping? _ramping;
    long _stepsWithoutLayers;

    public nn.Module Model { get; }
    public QuantizedTrainingOptions Options { get; }

    /// <summary>
    /// Builds the optimizer over <paramref name="model"/>'s parameters and makes its layer ids distinct
    /// (<see cref="QuantizationExtensions.MakeLayerIdsDistinct"/>).
    /// </summary>
    public QuantizedTraining(nn.Module model, QuantizedTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.TotalSteps <= 0) throw new ArgumentException($"TotalSteps = {options.TotalSteps}: a run needs at least one step");
        if (!(options.LearningRate > 0) || double.IsInfinity(options.LearningRate)) throw new ArgumentException($"LearningRate = {options.LearningRate}: use a positive number");
        if (!(options.WeightDecay >= 0)) throw new ArgumentException($"WeightDecay = {options.WeightDecay}: use 0 or more");
        if (!(options.ClipGradNorm >= 0)) throw new ArgumentException($"ClipGradNorm = {options.ClipGradNorm}: use 0 (off) or a positive norm");
        if (options.StepsPerEpoch is <= 0) throw new ArgumentException($"StepsPerEpoch = {options.StepsPerEpoch}: use a positive number");
        Model = model;
        Options = options;
        _layers = model.QuantizedLinears().Select(l => l.Layer).ToList();
        _ramped = _layers.Where(l => l.NeedsRampingCalibration).ToList();
        if (_ramped.Count > 0 && options.StepsPerEpoch is null)
            throw new ArgumentException("the model uses Q-Ramping, which recalibrates at the start of every epoch: set StepsPerEpoch");
        model.MakeLayerIdsDistinct();

        var named = model.named_parameters().ToList();
        _parameters = named.Select(p => p.parameter).ToList();
        var decays = options.Decays ?? ((_, p) => p.dim() >= 2);
        var decayed = named.Select(p => (p.parameter, decay: decays(p.name, p.parameter) ? options.WeightDecay : 0.0)).ToList();
        if (_ramped.Count > 0)
            _ramping = new AdamWRamping(decayed, options.LearningRate, options.Beta1, options.Beta2, options.Eps);
        else
        {
            var groups = decayed.GroupBy(d => d.decay).Select(g => new AdamW.ParamGroup(g.Select(d => d.parameter),
                new AdamW.Options { weight_decay = g.Key, LearningRate = options.LearningRate }));
            _adamW = optim.AdamW(groups.ToList(), options.LearningRate, options.Beta1, options.Beta2, options.Eps, weight_decay: 0);
        }
    }

    /// <summary>Optimizer steps taken: read from the layers' counters, so it is right after <c>model.load</c>.</summary>
    public long CompletedSteps => _layers.Count > 0 ? _layers.Max(l => l.OptimizerSteps) : _stepsWithoutLayers;

    /// <summary>The learning rate of the next step.</summary>
    public double LearningRate => LearningRateAt(CompletedSteps);

    double LearningRateAt(long step) => Options.LearningRateAt?.Invoke(step) ?? Options.LearningRate;

    /// <summary>Whether some layer uses Q-Ramping, so that the optimizer is AdamW-Ramping.</summary>
    public bool UsesQRamping => _ramping is not null;

    /// <summary>Under Q-Ramping: the next step starts an epoch, and <see cref="Calibrate"/> has not run for it yet.</summary>
    public bool CalibrationDue => _ramping is not null && CompletedSteps % Options.StepsPerEpoch!.Value == 0
        && _ramped.Any(l => l.CalibratedAtStep != CompletedSteps);

    public void ZeroGrad()
    {
        if (_ramping is not null) _ramping.zero_grad();
        else _adamW!.zero_grad();
    }

    /// <summary>
    /// One optimizer step on the gradients that backward left, at this step's learning rate, then the quantization
    /// state update. Returns the gradient norm before clipping when <see cref="QuantizedTrainingOptions.ClipGradNorm"/>
    /// is set (0 otherwise); a norm that is not finite skips the step and leaves the weights as they were.
    /// </summary>
    public double Step()
    {
        long step = CompletedSteps;
        if (CalibrationDue)
            throw new InvalidOperationException($"Q-Ramping recalibrates at the start of every epoch: call Calibrate(...) before step {step + 1} (CalibrationDue is true)");
        SetLearningRate(LearningRateAt(step));
        var parallel = Options.DataParallel;
        // Every rank then clips, steps (or skips a non-finite step) on the same mean gradients.
        parallel?.ReduceGradients();
        double norm = 0;
        if (Options.ClipGradNorm > 0)
        {
            norm = nn.utils.clip_grad_norm_(_parameters, Options.ClipGradNorm);
            if (!double.IsFinite(norm)) return norm;
        }
        if (_ramping is not null) _ramping.step();
        else _adamW!.step();
        parallel?.ReduceOutControlNorms();
        Model.UpdateQuantizationState(step + 1, Options.TotalSteps);
        parallel?.AfterQuantizationUpdate(step + 1);
        _stepsWithoutLayers = step + 1;
        return norm;
    }

    /// <summary>
    /// Q-Ramping's calibration (ALGORITHMS.md §5): <see cref="QuantizedTrainingOptions.CalibrationSteps"/> ordinary
    /// steps on the losses <paramref name="nextLoss"/> returns (one training batch per call), measured and then undone
    /// bit for bit (weights, optimizer, counters and torch's CPU generator), set each quantized weight's update periods.
    /// Returns the mean period per layer path.
    /// </summary>
    public IReadOnlyDictionary<string, double> Calibrate(Func<Tensor> nextLoss)
    {
        ArgumentNullException.ThrowIfNull(nextLoss);
        if (_ramping is null) throw new InvalidOperationException("Calibrate is Q-Ramping's; no layer of this model uses it");
        _ramping.LearningRate = LearningRateAt(CompletedSteps);
        var rng = get_rng_state();
        try
        {
            return QRampingCalibration.Calibrate(Model, _ramping, () =>
            {
                using var scope = NewDisposeScope();
                var loss = nextLoss();
                _ramping.zero_grad();
                loss.backward();
                Options.DataParallel?.ReduceGradients();
                _ramping.step();
            }, Options.StepsPerEpoch!.Value, Options.CalibrationSteps);
        }
        finally
        {
            set_rng_state(rng);
            rng.Dispose();
        }
    }

    void SetLearningRate(double lr)
    {
        if (_ramping is not null) _ramping.LearningRate = lr;
        else foreach (var g in _adamW!.ParamGroups) g.LearningRate = lr;
    }

    const byte AdamWTag = 1, RampingTag = 2;

    /// <summary>Writes the optimizer's state (moments, step counts; under Q-Ramping also periods and accumulators).</summary>
    public void SaveOptimizer(BinaryWriter writer)
    {
        writer.Write(_ramping is not null ? RampingTag : AdamWTag);
        if (_ramping is not null) _ramping.Save(writer);
        else _adamW!.save_state_dict(writer);
    }

    /// <summary>Restores what <see cref="SaveOptimizer"/> wrote for the same model and options.</summary>
    public void LoadOptimizer(BinaryReader reader)
    {
        byte tag = reader.ReadByte();
        byte expected = _ramping is not null ? RampingTag : AdamWTag;
        if (tag != expected)
            throw new InvalidDataException(tag == RampingTag ? "the optimizer state is AdamW-Ramping's, but this model does not use Q-Ramping" : "the optimizer state is plain AdamW's, but this model uses Q-Ramping");
        if (_ramping is not null) _ramping.Load(reader);
        else _adamW!.load_state_dict(reader);
    }

    public void Dispose()
    {
        _ramping?.Dispose();
        _adamW?.Dispose();
    }
}
