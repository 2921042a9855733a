using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Oscillation;

/// <summary>What a tracker measured over its window (ALGORITHMS.md §5).</summary>
/// <param name="Steps">Optimizer steps observed.</param>
/// <param name="MeanDfp">Mean over elements of D_FP = Σ|w_t − w_{t−1}|.</param>
/// <param name="MeanDq">Mean over elements of D_Q = Σ|Q(w_t) − Q(w_{t−1})|.</param>
/// <param name="OscillatingFraction">Fraction of elements with R = D_Q / (D_FP + 1e-8) ≥ τ.</param>
/// <param name="RateOfChange">r(W_Q): mean over steps of the fraction of elements whose Q(w) flipped to another grid value.</param>
public readonly record struct OscillationMetrics(long Steps, double MeanDfp, double MeanDq, double OscillatingFraction, double RateOfChange);

/// <summary>
/// Accumulates D_FP, D_Q and the per-step change count of one weight under its forward quantizer (Q2, RTN),
/// with tensor ops on the weight's device: no host copies but the final scalars.
/// </summary>
public sealed class OscillationTracker : IDisposable
{
    /// <summary>Relative size below which a change of Q(w) counts as scale drift rather than a flip.</summary>
    public const float ChangeTolerance = 0.01f;

    readonly QuantSpec _spec;
    Tensor? _prevW, _prevQ, _dfp, _dq, _changed;
    // The device path's flip count of the step in progress (zero between steps; not part of the saved window).
    Tensor? _flips;
    long _steps;

    public OscillationTracker(QuantSpec forwardSpec) => _spec = forwardSpec with { Rounding = Rounding.Nearest };

    public long Steps => _steps;
    public Tensor? Dfp => _dfp;
    public Tensor? Dq => _dq;

    /// <summary>Q(w) as the forward pass sees it (RTN); BF16 weights are their own quantized value.</summary>
    public Tensor Quantize(Tensor w) => _spec.Format == QuantFormat.None ? w.detach().clone() : Quantizer.Quantize(w.detach(), _spec);

    /// <summary>Observes the weight after an optimizer step (the first call only records it).</summary>
    public void Observe(Tensor w)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var wd = w.detach().to(ScalarType.Float32);
        var q = Quantize(wd).to(ScalarType.Float32);
        if (_prevW is null)
        {
            _prevW = wd.clone().DetachFromDisposeScope();
            _prevQ = q.DetachFromDisposeScope();
            _dfp = zeros_like(wd).DetachFromDisposeScope();
            _dq = zeros_like(wd).DetachFromDisposeScope();
            _changed = zeros(1, dtype: ScalarType.Float64, device: wd.device).DetachFromDisposeScope();
            return;
        }
        if (wd.device_type == DeviceType.CUDA && wd.numel() < int.MaxValue)
        {
            ObserveOnDevice(wd, q);
            _steps++;
            return;
        }
        _dfp!.add_((wd - _prevW).abs_());
        var dq = (q - _prevQ!).abs_();
        _dq!.add_(dq);
        // A change below 1% of the value is scale drift (NVFP4's FP32 outer scale follows amax every step),
        // not a flip to another grid point; every MX flip changes a value by a third or more.
        var flipped = dq.gt(maximum(q.abs(), _prevQ!.abs()).mul_(ChangeTolerance));
        _changed!.add_(flipped.to(ScalarType.Float64).mean());
        _prevW.copy_(wd);
        _prevQ!.copy_(q);
        _steps++;
    }

    /// <summary>
    /// The step above as one kernel pass and a one-thread accumulation (<see cref="OscillationKernels"/>), in place on the
    /// tracker's tensors: same values bit for bit, two launches instead of a dozen torch operations per weight.
    /// </summary>
    void ObserveOnDevice(Tensor wd, Tensor q)
    {
        _flips ??= zeros(1, dtype: ScalarType.Int32, device: wd.device).DetachFromDisposeScope();
        // Both are fresh or parameters, so contiguous already; the caller's dispose scope owns the handles.
        var w = wd.contiguous();
        var qc = q.contiguous();
        int n = (int)wd.numel();
        var runner = DeviceTensors.Runner(wd.device);
        runner.Launch(LibraryKernels.OscillationObserve, KernelGeometry.OscillationThreads(n),
        [
            KernelArg.View(DeviceTensors.View(w)), KernelArg.View(DeviceTensors.View(qc)), KernelArg.View(DeviceTensors.View(_prevW!)),
            KernelArg.View(DeviceTensors.View(_prevQ!)), KernelArg.View(DeviceTensors.View(_dfp!)), KernelArg.View(DeviceTensors.View(_dq!)),
            KernelArg.View(DeviceTensors.View(_flips)), KernelArg.Int(n),
        ]);
        runner.Launch(LibraryKernels.OscillationAccumulate, KernelGeometry.OneThread,
            [KernelArg.View(DeviceTensors.View(_flips)), KernelArg.View(DeviceTensors.View(_changed!)), KernelArg.Int(n)]);
    }

    /// <summary>Elements with R ≥ τ (a bool tensor of the weight's shape).</summary>
    public Tensor OscillatingMask(double threshold) => (_dq! / (_dfp! + 1e-8)).ge(threshold);

    public OscillationMetrics Metrics(double threshold = 8)
    {
        if (_dfp is null || _steps == 0) return default;
        using var scope = NewDisposeScope();
        return new OscillationMetrics(_steps,
            _dfp.mean().item<float>(), _dq!.mean().item<float>(),
            OscillatingMask(threshold).to(ScalarType.Float32).mean().item<float>(),
            _changed!.item<double>() / _steps);
    }

    /// <summary>Writes the window so far (steps and accumulators), for a run that stops and resumes.</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(_steps);
        writer.Write(_prevW is not null);
        if (_prevW is null) return;
        foreach (var t in new[] { _prevW, _prevQ!, _dfp!, _dq!, _changed! })
        {
            using var cpu = t.cpu();
            cpu.Save(writer);
        }
    }

    /// <summary>Replaces the window with one that <see cref="Save"/> wrote; tensors go to <paramref name="device"/>.</summary>
    public void Load(BinaryReader reader, Device device)
    {
        Dispose();
        _steps = reader.ReadInt64();
        if (!reader.ReadBoolean()) return;
        Tensor Next()
        {
            using var cpu = TensorExtensionMethods.Load(reader);
            return cpu.to(device).DetachFromDisposeScope();
        }
        _prevW = Next(); _prevQ = Next(); _dfp = Next(); _dq = Next(); _changed = Next();
    }

    /// <summary>Clears the accumulators; the next <see cref="Observe"/> starts a new window.</summary>
    public void Reset()
    {
        Dispose();
        _steps = 0;
    }

    public void Dispose()
    {
        _prevW?.Dispose(); _prevQ?.Dispose(); _dfp?.Dispose(); _dq?.Dispose(); _changed?.Dispose(); _flips?.Dispose();
        _prevW = _prevQ = _dfp = _dq = _changed = _flips = null;
    }
}
