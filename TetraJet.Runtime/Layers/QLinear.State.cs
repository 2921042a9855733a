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
    const string OutNormsName = "outcontrol_norms", OutStateName = "outcontrol_state", OutOutliersName = "outcontrol_outliers", OutFp4Name = "outcontrol_fp4";
    const string OscDfpName = "oscireset_dfp", OscDqName = "oscireset_dq", OscPrevWName = "oscireset_prev_w", OscPrevQName = "oscireset_prev_q";
    const string OscIndexName = "oscireset_index", OscPartName = "oscireset_fp4_part";

    /// <summary>Q-EMA rounds EMA-guided once this many EMA steps have been taken (§5).</summary>
    public const int EmaWarmupSteps = 10;

    OscillationTracker? _tracker;

    /// <summary>OutControl runs on this layer: the recipe asks for it and K leaves at least 128 FP4 channels beside the outliers.</summary>
    bool _outControl;

    Tensor Buffer(string name) => get_buffer(name) ?? throw new InvalidOperationException($"{GetName()}: buffer '{name}' is missing");

    void RegisterQuantizationState()
    {
        var r = Recipe;
        if (r.QEma)
        {
            register_buffer(EmaName, weight.detach().clone());
            register_buffer(EmaStepsName, zeros(1, dtype: ScalarType.Int64));
        }
        if (r.OutControl && (r.Q1.IsQuantized || r.Q2.IsQuantized))
        {
            if (!(r.OutlierFraction > 0 && r.OutlierFraction <= 0.5))
                throw new ArgumentException($"{GetName()}: OutlierFraction = {r.OutlierFraction} is outside (0, 0.5]; use e.g. 0.1");
            int outliers = OutControl.OutlierChannelCount(InFeatures, r.OutlierFraction);
            if (OutControl.KeepsPlainFp4(InFeatures, r.OutlierFraction))
                OutControl.Notice($"{GetName()}: OutControl is off for this layer, which keeps plain FP4: K = {InFeatures} with OutlierFraction = {r.OutlierFraction} " +
                    $"gives {outliers} outlier channels in whole blocks of {OutControl.ChannelBlock}, leaving {InFeatures - outliers} FP4 channels (fewer than {OutControl.ChannelBlock})");
            else
            {
                _outControl = true;
                register_buffer(OutNormsName, zeros(InFeatures, dtype: ScalarType.Float64));
                register_buffer(OutStateName, zeros(3, dtype: ScalarType.Int64));
                register_buffer(OutOutliersName, zeros(outliers, dtype: ScalarType.Int64));
                register_buffer(OutFp4Name, zeros(InFeatures - outliers, dtype: ScalarType.Int64));
            }
        }
        if (r.OsciReset)
        {
            if (r.OsciResetPeriod < 3 || r.OsciResetWindow < 1 || r.OsciResetWindow + 1 >= r.OsciResetPeriod)
                throw new ArgumentException($"{GetName()}: OsciReset window {r.OsciResetWindow} does not fit its period {r.OsciResetPeriod}: the snapshot, " +
                    "the window and the reset step must lie inside one period (1 ≤ window ≤ period − 2; §5: 50 and 200)");
            // Full: the accumulators cover all of W; with OutControl a window may track the FP4 part only, in the first
            // K − k columns. Lean: the same four over the tracked elements only, plus their flat indices (int32 while W
            // has fewer than 2^31 elements: half the bytes of int64).
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
            register_buffer(OscPartName, zeros(1, dtype: ScalarType.Int64));
        }
    }

    /// <summary>Elements that lean OsciReset tracks in a weight of <paramref name="numel"/> elements: ⌈fraction·numel⌉, at least 1.</summary>
    public static long OsciResetLeanCount(long numel, double fraction)
        // In decimal, so that e.g. 0.1·1000 is 100 and not the 100.00000000000001 that a double product may give.
        => Math.Clamp((long)Math.Ceiling((decimal)fraction * numel), 1, Math.Max(numel, 1));

    /// <summary>
    /// Flat indices (row-major in the tracked weight: W, or OutControl's gathered FP4 part) of the elements lean
    /// OsciReset tracks in the current window; null without it.
    /// </summary>
    public Tensor? OsciResetIndex
    {
        get
        {
            if (Recipe is not { OsciReset: true, OsciResetLean: true }) return null;
            var index = Buffer(OscIndexName);
            long count = OsciResetLeanCount((long)OutFeatures * OsciResetColumns(Buffer(OscPartName).item<long>() == 1), Recipe.OsciResetLeanFraction);
            return index.narrow(0, 0, count);
        }
    }

    /// <summary>The EMA weights of Q-EMA (null unless the recipe enables it).</summary>
    public Tensor? EmaWeight => Recipe.QEma ? Buffer(EmaName) : null;

    /// <summary>Whether Q2 now rounds EMA-guided: Q-EMA on a quantized weight that has taken its warm-up EMA steps.</summary>
    public bool EmaReady => Recipe.QEma && Recipe.Q2.IsQuantized && EmaSteps >= EmaWarmupSteps;

    /// <summary>EMA steps taken so far.</summary>
    public long EmaSteps => Recipe.QEma ? Buffer(EmaStepsName).item<long>() : 0;

    /// <summary>Whether OutControl runs on this layer (false when the recipe has it but K is too small: the layer keeps plain FP4).</summary>
    public bool HasOutControl => _outControl;

    /// <summary>OutControl's channels once fixed, each part largest norm sum first; null before, or without OutControl.</summary>
    public OutControlChannels? OutControlChannels =>
        _outControl && Buffer(OutStateName)[1].item<long>() == 1 ? new(Buffer(OutOutliersName), Buffer(OutFp4Name)) : null;

    /// <summary>OutControl's outlier input channels once fixed, as a mask (bool [K]); null before or without OutControl.</summary>
    public Tensor? OutlierMask
    {
        get
        {
            if (OutControlChannels is not { } channels) return null;
            var mask = zeros(InFeatures, dtype: ScalarType.Bool, device: channels.Outliers.device);
            return mask.index_fill_(0, channels.Outliers, true);
        }
    }

    /// <summary>Starts (or stops, with false) measuring D_FP, D_Q and r(W_Q) of this layer's weight for reporting.</summary>
    public void TrackOscillation(bool on = true)
    {
        _tracker?.Dispose();
        _tracker = on ? new OscillationTracker(Recipe.Q2.Spec) : null;
    }

    /// <summary>The measured oscillation since tracking started or was last reset.</summary>
    public OscillationMetrics OscillationMetrics(bool reset = false)
    {
        if (_tracker is null) return default;
        var m = _tracker.Metrics(Recipe.OsciResetThreshold);
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
        var r = Recipe;
        if (r.QEma)
        {
            var ema = Buffer(EmaName);
            ema.mul_(r.EmaDecay).add_(weight.detach().to(ema.dtype), alpha: 1 - r.EmaDecay);
            Buffer(EmaStepsName).add_(1);
        }
        _tracker?.Observe(weight);
        if (r.OsciReset) OsciResetStep(step, totalSteps);
        if (_outControl) OutControlStep(step);
    }

    /// <summary>OsciReset's phase of <paramref name="step"/>: 0 snapshot, 1 … W track, W + 1 reset; null outside (§5).</summary>
    public static long? OsciResetPhase(Recipe recipe, long step, long totalSteps)
    {
        long start = (long)Math.Floor(recipe.OsciResetStart * totalSteps);
        long phase = step % recipe.OsciResetPeriod;
        // Only a period whose snapshot step (t mod P = 0) was a step of the run at or after S is measured and reset.
        if (step - phase < Math.Max(start, 1) || phase > recipe.OsciResetWindow + 1) return null;
        return phase;
    }

    /// <summary>Columns OsciReset tracks: all K, or OutControl's K − k FP4 channels.</summary>
    long OsciResetColumns(bool fp4Part) => fp4Part ? Buffer(OutFp4Name).numel() : InFeatures;

    /// <summary>
    /// OsciReset (§5), as the authors' code runs it. At a step t ≥ S with t mod P = 0: snapshot w and zero D_FP, D_Q.
    /// At 1 ≤ t mod P ≤ W: D_FP += |w_t − w_{t−1}|, D_Q += |Q(w_t) − Q(w_{t−1})|. At t mod P = W + 1: w ← Q(w) where
    /// R = D_Q / D_FP ≥ τ (R = 0 where D_FP = 0), then clear. Q is Q2 with RTN; optimizer moments are untouched. With
    /// OutControl's channels fixed at the snapshot, the window tracks and resets only the FP4 part W[:, fp4], gathered
    /// and blocked as the forward pass quantizes it. The lean variant measures and resets only the elements it chose at
    /// the snapshot.
    /// </summary>
    void OsciResetStep(long step, long totalSteps)
    {
        var r = Recipe;
        if (OsciResetPhase(r, step, totalSteps) is not { } phase) return;
        var part = Buffer(OscPartName);
        if (phase == 0) part.fill_(OutControlChannels is null ? 0 : 1);
        var channels = part.item<long>() == 1 ? OutControlChannels : null;
        // The tracked weight [N, K] or [N, K − k], float32, and its RTN quantization (blocks along its own columns).
        var w = (channels is null ? weight.detach() : OutControl.Gather(weight.detach(), channels.Fp4)).to(ScalarType.Float32);
        var q = QuantizeForOscillation(w);
        var dfp = Buffer(OscDfpName); var dq = Buffer(OscDqName);
        var prevW = Buffer(OscPrevWName); var prevQ = Buffer(OscPrevQName);
        Tensor? index = null;
        if (r.OsciResetLean)
        {
            // Lean: the snapshot picks the elements nearest a rounding midpoint under the current scales; Q(W) still
            // needs the whole tracked weight (the scales are per block), but only the chosen elements are kept.
            long count = OsciResetLeanCount(w.numel(), r.OsciResetLeanFraction);
            var idx = Buffer(OscIndexName).narrow(0, 0, count);
            if (phase == 0) idx.copy_(RoundingMidpoints.Nearest(w, r.Q2.Spec with { Rounding = Rounding.Nearest }, count));
            index = idx.to(ScalarType.Int64);
            (w, q) = (w.take(index), q.take(index));
            (dfp, dq, prevW, prevQ) = (dfp.narrow(0, 0, count), dq.narrow(0, 0, count), prevW.narrow(0, 0, count), prevQ.narrow(0, 0, count));
        }
        else
        {
            long cols = w.size(1);
            (dfp, dq, prevW, prevQ) = (dfp.narrow(1, 0, cols), dq.narrow(1, 0, cols), prevW.narrow(1, 0, cols), prevQ.narrow(1, 0, cols));
        }
        if (phase == 0)
        {
            prevW.copy_(w); prevQ.copy_(q); dfp.zero_(); dq.zero_();
            return;
        }
        if (phase <= r.OsciResetWindow)
        {
            dfp.add_((w - prevW).abs_());
            dq.add_((q - prevQ).abs_());
            prevW.copy_(w); prevQ.copy_(q);
            return;
        }
        // phase == W + 1: reset where R ≥ τ, then drop the accumulators.
        var mask = dq.div(dfp).masked_fill_(dfp.eq(0), 0).ge(r.OsciResetThreshold);
        if (channels is null)
        {
            if (index is null) weight.copy_(where(mask, q.to(weight.dtype), weight));
            else weight.view(-1).index_copy_(0, index, where(mask, q, w).to(weight.dtype));   // untracked elements keep their value
        }
        else
        {
            var fp4 = OutControl.Gather(weight.detach(), channels.Fp4);
            if (index is null) fp4 = where(mask, q.to(weight.dtype), fp4);
            else fp4.view(-1).index_copy_(0, index, where(mask, q, w).to(weight.dtype));
            weight.index_copy_(1, channels.Fp4, fp4);                                          // the outlier columns are untouched
        }
        dfp.zero_(); dq.zero_();
    }

    Tensor QuantizeForOscillation(Tensor w)
    {
        var spec = Recipe.Q2.Spec with { Rounding = Rounding.Nearest };
        return spec.Format == QuantFormat.None ? w.clone() : Quantizer.Quantize(w, spec).to(ScalarType.Float32);
    }

    /// <summary>
    /// OutControl's window: the training forwards of steps start … start + window − 1 add their per-channel L2 norms
    /// (<see cref="CollectChannelNorms"/>); after the window's last optimizer step the channels are fixed, once.
    /// State buffer: [steps collected, fixed (0/1), last optimizer step].
    /// </summary>
    void OutControlStep(long step)
    {
        var r = Recipe;
        var state = Buffer(OutStateName);
        var s = state.data<long>().ToArray();
        if (s[1] == 1) return;
        if (step >= r.OutControlStart) s[0]++;
        s[2] = step;
        if (s[0] >= r.OutControlWindow)
        {
            var outliers = Buffer(OutOutliersName);
            var chosen = OutControl.SelectChannels(Buffer(OutNormsName), (int)outliers.numel());
            outliers.copy_(chosen.Outliers);
            Buffer(OutFp4Name).copy_(chosen.Fp4);
            s[1] = 1;
        }
        state.copy_(tensor(s));
    }

    /// <summary>In forward: while OutControl collects (the forward of a step ≥ start), add ‖X[:, j]‖₂ of this pass.</summary>
    void CollectChannelNorms(Tensor x2)
    {
        if (!_outControl) return;
        var s = Buffer(OutStateName).data<long>().ToArray();
        if (s[1] == 1 || s[2] + 1 < Recipe.OutControlStart) return;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Buffer(OutNormsName).add_(OutControl.PassNorms(x2));
    }
}
