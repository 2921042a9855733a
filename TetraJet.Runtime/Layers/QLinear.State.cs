using TetraJet.Oscillation;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The oscillation and outlier state of a layer (ALGORITHMS.md §5). Everything that a resumed run needs is a
/// registered buffer, so it travels with the state dict and moves with the module between devices.
/// </summary>
public sealed partial class QLinear
{
    const string EmaName = "ema_weight", EmaStepsName = "ema_steps";
    const string OutMaskName = "outlier_mask", OutNormsName = "outcontrol_norms", OutStateName = "outcontrol_state";
    const string OscDfpName = "oscireset_dfp", OscDqName = "oscireset_dq", OscPrevWName = "oscireset_prev_w", OscPrevQName = "oscireset_prev_q";
    const string OscIndexName = "oscireset_index";

    /// <summary>Q-EMA rounds EMA-guided once this many EMA steps have been taken (§5).</summary>
    public const int EmaWarmupSteps = 10;

    OscillationTracker? _tracker;

    Tensor Buffer(string name) => get_buffer(name) ?? throw new InvalidOperationException($"{GetName()}: buffer '{name}' is missing");

    void RegisterQuantizationState()
    {
        var r = Kernels.Recipe;
        if (r.QEma)
        {
            register_buffer(EmaName, weight.detach().clone());
            register_buffer(EmaStepsName, zeros(1, dtype: ScalarType.Int64));
        }
        if (r.OutControl)
        {
            register_buffer(OutMaskName, zeros(InFeatures, dtype: ScalarType.Bool));
            register_buffer(OutNormsName, zeros(InFeatures, dtype: ScalarType.Float64));
            register_buffer(OutStateName, zeros(3, dtype: ScalarType.Int64));
        }
        if (r.OsciReset)
        {
            // Full: the accumulators cover all of W. Lean: the same four over the tracked elements only, plus their
            // flat indices (int32 while W has fewer than 2^31 elements: half the bytes of int64).
            long numel = (long)OutFeatures * InFeatures;
            long[] shape = [OutFeatures, InFeatures];
            if (r.OsciResetLean)
            {
                if (!(r.OsciResetLeanFraction > 0 && r.OsciResetLeanFraction <= 1))
                    throw new ArgumentException($"{GetName()}: OsciResetLeanFraction = {r.OsciResetLeanFraction} is outside (0, 1]; use e.g. 0.1");
                long tracked = OsciResetLeanCount(numel, r.OsciResetLeanFraction);
                shape = [tracked];
                register_buffer(OscIndexName, zeros(tracked, dtype: numel <= int.MaxValue ? ScalarType.Int32 : ScalarType.Int64));
            }
            register_buffer(OscDfpName, zeros(shape));
            register_buffer(OscDqName, zeros(shape));
            register_buffer(OscPrevWName, zeros(shape));
            register_buffer(OscPrevQName, zeros(shape));
        }
    }

    /// <summary>Elements that lean OsciReset tracks in a weight of <paramref name="numel"/> elements: ⌈fraction·numel⌉, at least 1.</summary>
    public static long OsciResetLeanCount(long numel, double fraction)
        // In decimal, so that e.g. 0.1·1000 is 100 and not the 100.00000000000001 that a double product may give.
        => Math.Clamp((long)Math.Ceiling((decimal)fraction * numel), 1, Math.Max(numel, 1));

    /// <summary>Flat indices (row-major in W) of the elements lean OsciReset tracks in the current window; null without it.</summary>
    public Tensor? OsciResetIndex => Kernels.Recipe is { OsciReset: true, OsciResetLean: true } ? Buffer(OscIndexName) : null;

    /// <summary>The EMA weights of Q-EMA (null unless the recipe enables it).</summary>
    public Tensor? EmaWeight => Kernels.Recipe.QEma ? Buffer(EmaName) : null;

    /// <summary>EMA steps taken so far.</summary>
    public long EmaSteps => Kernels.Recipe.QEma ? Buffer(EmaStepsName).item<long>() : 0;

    /// <summary>OutControl's outlier input channels once fixed (bool [K]); null before or without OutControl.</summary>
    public Tensor? OutlierMask => Kernels.Recipe.OutControl && Buffer(OutStateName)[1].item<long>() == 1 ? Buffer(OutMaskName) : null;

    /// <summary>Starts (or stops, with false) measuring D_FP, D_Q and r(W_Q) of this layer's weight for reporting.</summary>
    public void TrackOscillation(bool on = true)
    {
        _tracker?.Dispose();
        _tracker = on ? new OscillationTracker(Kernels.Recipe.Q2.Spec) : null;
    }

    /// <summary>The measured oscillation since tracking started or was last reset.</summary>
    public OscillationMetrics OscillationMetrics(bool reset = false)
    {
        if (_tracker is null) return default;
        var m = _tracker.Metrics(Kernels.Recipe.OsciResetThreshold);
        if (reset) _tracker.Reset();
        return m;
    }

    /// <summary>
    /// After each optimizer step: Q-EMA update, oscillation tracking, the OsciReset schedule and the OutControl window.
    /// <paramref name="step"/> counts optimizer steps from 1; <paramref name="totalSteps"/> is the length of the run.
    /// </summary>
    public void UpdateQuantizationState(long step, long totalSteps)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        MarkUpdated(step);
        var r = Kernels.Recipe;
        if (r.QEma)
        {
            var ema = Buffer(EmaName);
            ema.mul_(r.EmaDecay).add_(weight.detach().to(ema.dtype), alpha: 1 - r.EmaDecay);
            Buffer(EmaStepsName).add_(1);
        }
        _tracker?.Observe(weight);
        if (r.OsciReset) OsciResetStep(step, totalSteps);
        if (r.OutControl) OutControlStep(step);
    }

    /// <summary>
    /// From step S = start·total, every P steps: measure over the last W steps of the period, then set
    /// w ← Q(w) where D_Q / (D_FP + 1e-8) ≥ τ and clear. Optimizer moments are untouched. The lean variant
    /// measures and resets only the elements it chose at the start of the window.
    /// </summary>
    void OsciResetStep(long step, long totalSteps)
    {
        var r = Kernels.Recipe;
        long start = (long)Math.Floor(r.OsciResetStart * totalSteps);
        if (step < start) return;
        long pos = (step - start) % r.OsciResetPeriod;           // 0 … P−1 within the current period
        long windowStart = r.OsciResetPeriod - r.OsciResetWindow;
        if (pos < windowStart - 1) return;
        var dfp = Buffer(OscDfpName); var dq = Buffer(OscDqName);
        var prevW = Buffer(OscPrevWName); var prevQ = Buffer(OscPrevQName);
        var w = weight.detach().to(ScalarType.Float32);
        var q = QuantizeForOscillation(w);
        Tensor? index = null;
        if (r.OsciResetLean)
        {
            // Lean: the start of each window picks the elements nearest a rounding midpoint under the current scales;
            // Q(W) still needs all of W (the scales are per block), but only the tracked elements are kept.
            var idx = Buffer(OscIndexName);
            if (pos == windowStart - 1)
                idx.copy_(RoundingMidpoints.Nearest(w, r.Q2.Spec with { Rounding = Rounding.Nearest }, idx.numel()));
            index = idx.to(ScalarType.Int64);
            w = w.take(index);
            q = q.take(index);
        }
        if (pos == windowStart - 1)
        {
            // The step before the window: record the starting point.
            prevW.copy_(w); prevQ.copy_(q); dfp.zero_(); dq.zero_();
            return;
        }
        dfp.add_((w - prevW).abs_());
        dq.add_((q - prevQ).abs_());
        prevW.copy_(w); prevQ.copy_(q);
        if (pos == r.OsciResetPeriod - 1)
        {
            var mask = (dq / (dfp + 1e-8)).ge(r.OsciResetThreshold);
            if (index is null) weight.copy_(where(mask, q.to(weight.dtype), weight));
            else weight.view(-1).index_copy_(0, index, where(mask, q, w).to(weight.dtype));   // untracked elements keep their value
            dfp.zero_(); dq.zero_();
        }
    }

    Tensor QuantizeForOscillation(Tensor w)
    {
        var spec = Kernels.Recipe.Q2.Spec with { Rounding = Rounding.Nearest };
        return spec.Format == QuantFormat.None ? w.clone() : Quantizer.Quantize(w, spec).to(ScalarType.Float32);
    }

    /// <summary>
    /// OutControl: forwards from the start step add ‖X[:, j]‖² to the channel norms; after the window's last step
    /// the top channels are fixed. State buffer: [steps collected, fixed (0/1), last optimizer step].
    /// </summary>
    void OutControlStep(long step)
    {
        var r = Kernels.Recipe;
        var state = Buffer(OutStateName);
        var s = state.data<long>().ToArray();
        if (s[1] == 1) return;
        if (step >= r.OutControlStart) s[0]++;
        s[2] = step;
        if (s[0] >= r.OutControlWindow)
        {
            var norms = Buffer(OutNormsName);
            int count = OutlierChannelCount(InFeatures, r.OutlierFraction);
            var mask = Buffer(OutMaskName);
            mask.zero_();
            mask.index_fill_(0, norms.topk(count).indexes, true);
            s[1] = 1;
        }
        state.copy_(tensor(s));
    }

    /// <summary>Top fraction of K, rounded up to a multiple of 32 (the MXFP8 block), at most K.</summary>
    public static int OutlierChannelCount(int k, double fraction) => Math.Min(k, (int)Math.Ceiling(k * fraction / 32.0) * 32);

    /// <summary>In forward: while OutControl collects (this is a step ≥ start), add the channel norms of X.</summary>
    void CollectChannelNorms(Tensor x2)
    {
        var s = Buffer(OutStateName).data<long>().ToArray();
        if (s[1] == 1 || s[2] + 1 < Kernels.Recipe.OutControlStart) return;
        using var _ = no_grad();
        Buffer(OutNormsName).add_(x2.detach().to(ScalarType.Float64).square().sum(dim: 0));
    }
}
