using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The layer's counters (stream key, layer id, step, optimizer steps, Q-Ramping calibration) and the check that the
/// training loop keeps the per-step protocol its options need.
/// </summary>
public sealed partial class QLinear
{
    /// <summary>State-dict key of the counters: int64 [Philox key, layer id, step, optimizer steps, calibrated at].</summary>
    public const string CountersName = "quantization_counters";

    const int KeySlot = 0, IdSlot = 1, StepSlot = 2, UpdatesSlot = 3, CalibratedSlot = 4;

    // The counters live in one CPU tensor that named_buffers() lists under CountersName, so state_dict(), Module.save
    // and Module.load / load_state_dict (of this layer or any parent, nn.Sequential included) write and overwrite it
    // in place. It is not a registered buffer: .to(device) would move it, and reading it every forward would then
    // cost a device round trip. The holder is not a Tensor field, so that RegisterComponents() does not register it.
    sealed class CounterStore
    {
        public readonly Tensor Values = zeros(5, dtype: ScalarType.Int64).DetachFromDisposeScope();
    }

    readonly CounterStore _counters = new();

    unsafe long Counter(int slot) => ((long*)Interop.TensorMemory.DataPointer(_counters.Values))[slot];
    unsafe void SetCounter(int slot, long value) => ((long*)Interop.TensorMemory.DataPointer(_counters.Values))[slot] = value;

    /// <summary>
    /// Philox key of this layer's stochastic rounding and RHT signs. Default 0: the run's seed already reaches the
    /// streams through the layer id, a hash of the initial weights that the seed chose.
    /// </summary>
    public ulong Seed { get => (ulong)Counter(KeySlot); set => SetCounter(KeySlot, (long)value); }

    /// <summary>Layer id in the stream derivation (<see cref="LayerStreams"/>): from the initial weights unless set.</summary>
    public int LayerId { get => (int)Counter(IdSlot); set => SetCounter(IdSlot, value); }

    /// <summary>Quantized training forwards so far: the step part of every stream id. In the state dict.</summary>
    public long Step { get => Counter(StepSlot); set => SetCounter(StepSlot, value); }

    /// <summary>The optimizer step of the last <see cref="UpdateQuantizationState"/> (0 before the first). In the state dict.</summary>
    public long OptimizerSteps { get => Counter(UpdatesSlot); private set => SetCounter(UpdatesSlot, value); }

    /// <summary>The optimizer step at which Q-Ramping last calibrated this layer's periods, or null if it never did.</summary>
    public long? CalibratedAtStep => Counter(CalibratedSlot) is var c && c > 0 ? c - 1 : null;

    internal void MarkCalibrated() => SetCounter(CalibratedSlot, OptimizerSteps + 1);

    /// <summary>Records an optimizer step's update (<see cref="UpdateQuantizationState"/>).</summary>
    void MarkUpdated(long step)
    {
        OptimizerSteps = step;
        _updateSeen = true;
    }

    /// <summary>
    /// The registered buffers and, when <paramref name="recurse"/> is set (as state_dict() and every parent ask), the
    /// counters, so that a saved model resumes with the same streams and schedules. Module.to() moves the buffers of
    /// named_buffers(recurse: false): the counters are not among them and stay on the CPU.
    /// </summary>
    public override IEnumerable<(string name, Tensor buffer)> named_buffers(bool recurse = true, bool include_nonpersistent = true)
    {
        foreach (var b in base.named_buffers(recurse, include_nonpersistent)) yield return b;
        if (recurse) yield return (CountersName, _counters.Values);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _counters.Values.Dispose();
            _tracker?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Whether the options need <see cref="UpdateQuantizationState"/> after every optimizer step.</summary>
    public bool NeedsStateUpdates => Recipe is { IsQuantized: true } r && (r.QEma || r.OsciReset || r.OutControl);

    /// <summary>Whether Q-Ramping needs this layer calibrated (AdamW-Ramping periods) before training proceeds.</summary>
    public bool NeedsRampingCalibration => Recipe is { QRamping: true, Q2.IsQuantized: true };

    /// <summary>Set while Q-Ramping's calibration runs its measuring steps, which update nothing on purpose.</summary>
    internal bool ProtocolCheckSuspended { get; set; }

    bool _protocolSeen, _updateSeen;
    long? _weightFingerprint;

    /// <summary>
    /// Called at each training forward. Until the loop has shown that it keeps the protocol (an update after an
    /// optimizer step; a calibration under Q-Ramping), a weight that changed since the first training forward means
    /// an optimizer step went by without it: Q-EMA, OsciReset, OutControl or Q-Ramping would silently do nothing.
    /// Gradient accumulation (several forwards, unchanged weights) passes. The fingerprint, a sum over W, is taken
    /// only until the protocol is seen, normally the first step.
    /// </summary>
    void CheckTrainingProtocol()
    {
        if (_protocolSeen || ProtocolCheckSuspended) return;
        bool updates = NeedsStateUpdates, calibration = NeedsRampingCalibration;
        bool updated = _updateSeen || OptimizerSteps > 0;
        if ((!updates || updated) && (!calibration || CalibratedAtStep is not null))
        {
            _protocolSeen = true;
            _weightFingerprint = null;
            return;
        }
        long fingerprint;
        using (no_grad())
        using (var detached = weight.detach())
        using (var sum = detached.sum(type: ScalarType.Float64))
            fingerprint = BitConverter.DoubleToInt64Bits(sum.item<double>());
        if (_weightFingerprint is null) { _weightFingerprint = fingerprint; return; }
        if (fingerprint == _weightFingerprint) return;
        var r = Recipe;
        var options = new List<string>();
        if (r.QEma) options.Add("Q-EMA");
        if (r.OsciReset) options.Add("OsciReset");
        if (r.OutControl) options.Add("OutControl");
        string what = updates && !updated
            ? $"uses {string.Join(", ", options)}, which must be updated after every optimizer step, but the weights changed without " +
              "UpdateQuantizationState. Step the optimizer through TetraJet.QuantizedTraining (training.Step()), or call " +
              "model.UpdateQuantizationState(step, totalSteps) after each optimizer.step()"
            : "uses Q-Ramping, whose AdamW-Ramping periods must be calibrated at the start of every epoch, but the weights changed " +
              "before any calibration. Train through TetraJet.QuantizedTraining with StepsPerEpoch set and call training.Calibrate(...) " +
              "when training.CalibrationDue, or run QRampingCalibration.Calibrate with an AdamWRamping optimizer";
        throw new InvalidOperationException($"{GetName()}: this layer's recipe {what}.");
    }

    /// <summary>The oscillation tracker's window for a checkpoint: whether one runs, then its state.</summary>
    internal void SaveOscillationTracker(BinaryWriter writer)
    {
        writer.Write(_tracker is not null);
        _tracker?.Save(writer);
    }

    internal void LoadOscillationTracker(BinaryReader reader)
    {
        bool tracked = reader.ReadBoolean();
        if (tracked != (_tracker is not null))
            throw new InvalidDataException($"{GetName()}: the saved oscillation tracking is {(tracked ? "on" : "off")}, here it is {(tracked ? "off" : "on")}");
        _tracker?.Load(reader, weight.device);
    }
}
