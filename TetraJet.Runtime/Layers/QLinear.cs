using TetraJet.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// A fully-quantized linear layer: Y = Q1(X)·Q2(W)ᵀ + b, with dX and dW computed from FP4 operands
/// as the recipe's six quantizer slots say (ALGORITHMS.md §4). Input [..., K], output [..., N];
/// float32 or bfloat16, CPU or CUDA.
/// </summary>
public sealed partial class QLinear : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    public Parameter? bias;

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Recipe Recipe => Kernels.Recipe;

    /// <summary>The kernel set this layer runs (generated code passes a specialised one).</summary>
    public LinearKernels Kernels { get; }

    internal long CurrentStep { get; private set; }

    /// <summary>
    /// Keep X̂ and Ŵ for backward in FP4 storage form (codes and scales, about a quarter of BF16) rather than
    /// dequantized. On by default; off trades that memory for two fewer passes per step.
    /// </summary>
    public bool PackSavedOperands { get; set; } = true;

    /// <summary>Whether the current forward builds a graph (gradient mode on, something requires a gradient): else nothing is saved.</summary>
    internal bool NeedsBackward { get; private set; }

    /// <summary>Bytes the last training forward kept for backward (X̂ and Ŵ, packed or not): this layer's activation memory.</summary>
    public long LastSavedBytes { get; internal set; }

    public QLinear(int inFeatures, int outFeatures, Recipe recipe, bool bias = true, string name = "QLinear", LinearKernels? kernels = null)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"{name}: in and out features must be positive, got [{outFeatures}, {inFeatures}]");
        Kernels = kernels ?? LinearKernels.For(recipe);
        int multiple = Kernels.Recipe.FeatureMultiple;
        if (inFeatures % multiple != 0)
            throw new ArgumentException($"{name}: in_features (K) = {inFeatures} is not a multiple of {multiple}, the block size {Kernels.Recipe.Name} needs");
        if (outFeatures % multiple != 0)
            throw new ArgumentException($"{name}: out_features (N) = {outFeatures} is not a multiple of {multiple}, the block size {Kernels.Recipe.Name} needs");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(empty(outFeatures, inFeatures));
        this.bias = bias ? new Parameter(empty(outFeatures)) : null;
        ResetParameters();
        // Distinct per layer with nothing to call: two blocks of one class start from different random weights.
        LayerId = LayerStreams.IdOfInitialWeights(weight, this.bias);
        RegisterComponents();
        RegisterQuantizationState();
    }

    /// <summary>Kaiming-uniform weights and uniform bias, as <c>nn.Linear</c> initialises them.</summary>
    public void ResetParameters()
    {
        using var _ = no_grad();
        var bound = 1.0 / Math.Sqrt(InFeatures);
        nn.init.uniform_(weight, -bound, bound);
        if (bias is not null) nn.init.uniform_(bias, -bound, bound);
    }

    public override Tensor forward(Tensor input)
    {
        if (input.dim() == 0)
            throw new ArgumentException($"{GetName()}: input is a rank-0 tensor; expected [..., {InFeatures}]");
        if (input.shape[^1] != InFeatures)
            throw new ArgumentException($"{GetName()}: input has {input.shape[^1]} features in its last dimension (shape [{string.Join(", ", input.shape)}]); this layer expects {InFeatures}");
        if (input.dtype != ScalarType.Float32 && input.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"{GetName()}: input is {input.dtype}; expected float32 or bfloat16");
        CurrentStep = Step;
        NeedsBackward = is_grad_enabled() && (input.requires_grad || weight.requires_grad || bias?.requires_grad == true);
        if (is_grad_enabled() && training)
        {
            CheckTrainingProtocol();
            Step++;
            // Statistics are gathered here: inside the autograd function gradient mode is off.
            if (Kernels.Recipe.OutControl) CollectChannelNorms(input.reshape(-1, InFeatures));
        }
        return Kernels.Apply(this, input);
    }

    /// <summary>MXFP8 of OutControl's outlier channels: RTN in Q1/Q2, SR in Q6 (§5).</summary>
    static readonly QuantSpec OutlierForward = new(QuantFormat.MXFP8), OutlierWgrad = new(QuantFormat.MXFP8, Rounding.Stochastic);

    /// <summary>Q1(X) along K and Q2(W) along K (EMA-guided under Q-EMA; outlier channels in MXFP8 under OutControl).</summary>
    internal (Tensor Xq, Tensor Wq) QuantizeForwardOperands(Tensor x2, Tensor w, Recipe r)
    {
        Tensor? mask = null;
        if (r.OutControl) mask = OutlierMask;
        var q2 = r.Q2;
        Tensor? ema = null;
        if (r.QEma && q2.IsQuantized && EmaSteps >= EmaWarmupSteps)
        {
            q2 = q2 with { Spec = q2.Spec with { Rounding = Rounding.EmaGuided } };
            ema = EmaWeight;
        }
        if (mask is null)
            return (QuantizeSlot(x2, r.Q1, BlockAxis.Last, 1, pad: false),
                    QuantizeSlot(w.detach(), q2, BlockAxis.Last, 2, pad: false, ema: ema));
        return (QuantizeFeaturesWithOutliers(x2, r.Q1, mask, 1, null),
                QuantizeFeaturesWithOutliers(w.detach(), q2, mask, 2, ema));
    }

    /// <summary>
    /// OutControl along K: the regular channels, gathered contiguously (zero-padded to the block), in the slot's
    /// FP4 format; the outlier channels in MXFP8. Same as permuting channels and summing an FP4 and an FP8 GEMM.
    /// </summary>
    Tensor QuantizeFeaturesWithOutliers(Tensor t, QuantizerSlot slot, Tensor mask, int index, Tensor? ema)
    {
        if (!slot.IsQuantized) return t;
        var outIdx = mask.nonzero().squeeze(1).to(t.device);
        var restIdx = mask.logical_not().nonzero().squeeze(1).to(t.device);
        var result = empty_like(t);
        var rest = t.index_select(1, restIdx);
        var restEma = ema?.index_select(1, restIdx);
        result.index_copy_(1, restIdx, QuantizeSlot(rest, slot, BlockAxis.Last, index, pad: true, ema: restEma));
        result.index_copy_(1, outIdx, Quantizer.Quantize(t.index_select(1, outIdx), OutlierForward));
        return result;
    }

    /// <summary>
    /// Q3(dY) and Q5(dY) from one pass over dY when the recipe allows (same spec, no RHT: the MX recipes);
    /// null otherwise, and the slots quantize dY separately.
    /// </summary>
    internal (Tensor Q3, Tensor Q5)? QuantizeGradientPair(Tensor dy, Recipe r, long step)
    {
        if (!r.Q3.IsQuantized || r.Q3.Hadamard || r.Q5.Hadamard || r.Q3.Spec != r.Q5.Spec || r.Q3.Spec.Tile16) return null;
        return Quantizer.QuantizeBothAxes(dy, r.Q3.Spec, Seed, LayerStreams.For(step, LayerId, 3), LayerStreams.For(step, LayerId, 5));
    }

    /// <summary>Q3(dY) along N and Q4(Ŵ) along N, sharing RHT signs.</summary>
    internal (Tensor Dy, Tensor W) QuantizeDgradOperands(Tensor dy, Tensor wq, Recipe r, long step, Tensor? dyQuantized = null)
        => QuantizeDgradOperands(dy, SavedOperand.View(wq), r, step, dyQuantized);

    internal (Tensor Dy, Tensor W) QuantizeDgradOperands(Tensor dy, SavedOperand wq, Recipe r, long step, Tensor? dyQuantized = null)
    {
        ulong signs = LayerStreams.For(step, LayerId, LayerStreams.DgradHadamard);
        var dyq = dyQuantized ?? QuantizeSlot(dy, r.Q3, BlockAxis.Last, 3, pad: false, step, signs);
        var wq4 = r.Q4.Source == SlotSource.ForwardCodesTransposed
            ? wq.Value()
            : QuantizeFromPacked(wq, r.Q4, wq.Packed?.Rows ?? 0, 4, step, signs)
              ?? QuantizeSlot(wq.Value(), r.Q4, BlockAxis.First, 4, pad: false, step, signs);
        return (dyq, wq4);
    }

    /// <summary>Q5(dY) along T and Q6(X̂) along T, sharing RHT signs; T is zero-padded to the block.</summary>
    internal (Tensor Dy, Tensor X) QuantizeWgradOperands(Tensor dy, Tensor x, Recipe r, long step, Tensor? dyQuantized = null)
        => QuantizeWgradOperands(dy, SavedOperand.View(x), r, step, dyQuantized);

    internal (Tensor Dy, Tensor X) QuantizeWgradOperands(Tensor dy, SavedOperand saved, Recipe r, long step, Tensor? dyQuantized = null)
    {
        ulong signs = LayerStreams.For(step, LayerId, LayerStreams.WgradHadamard);
        long t = dy.shape[0], rows = t;
        if (r.Q5.Hadamard || r.Q6.Hadamard)
        {
            // The RHT mixes padded rows with real ones, so the padding must exist before it (and in the GEMM).
            rows = (t + Hadamard.Size - 1) / Hadamard.Size * Hadamard.Size;
            if (rows != t) dy = nn.functional.pad(dy, [0, 0, 0, rows - t]);
        }
        var dyq = dyQuantized ?? QuantizeSlot(dy, r.Q5, BlockAxis.First, 5, pad: true, step, signs);
        // From packed X̂ on CUDA: one pass unpacks, transforms and quantizes (the padding rows are the kernel's zeros).
        Tensor? padded = null;
        Tensor X() => padded ??= rows == t ? saved.Value() : nn.functional.pad(saved.Value(), [0, 0, 0, rows - t]);
        var xq = QuantizeFromPacked(saved, r.Q6, rows, 6, step, signs) ?? QuantizeSlot(X(), r.Q6, BlockAxis.First, 6, pad: true, step, signs);
        if (r.OutControl && r.Q6.IsQuantized && OutlierMask is { } mask)
        {
            // Blocks along T are per channel, so only the outlier channels change: MXFP8 SR (after the same RHT).
            var x = X();
            var outIdx = mask.nonzero().squeeze(1).to(x.device);
            var slot = r.Q6 with { Spec = OutlierWgrad };
            xq = xq.index_copy(1, outIdx, QuantizeSlot(x.index_select(1, outIdx), slot, BlockAxis.First, 6, pad: true, step, signs));
        }
        return (dyq, xq);
    }

    /// <summary>A first-axis slot straight from a packed operand (CUDA, supported formats), or null.</summary>
    Tensor? QuantizeFromPacked(SavedOperand saved, QuantizerSlot slot, long rows, int index, long step, ulong hadamardStream)
    {
        if (saved.Packed is not { } p || !slot.IsQuantized) return null;
        uint? signs = slot.Hadamard ? Randomness.Philox.HadamardSigns(Seed, hadamardStream) : null;
        return DevicePacking.QuantizeFromPacked(p, slot.Spec, rows, Seed, LayerStreams.For(step, LayerId, index), signs);
    }

    Tensor QuantizeSlot(Tensor t, QuantizerSlot slot, BlockAxis axis, int index, bool pad, long step = 0, ulong hadamardStream = 0, Tensor? ema = null)
    {
        if (!slot.IsQuantized) return t;
        // With an RHT the signs' stream is shared by the pair; the SR stream is the slot's own.
        ulong stream = LayerStreams.For(step, LayerId, index);
        if (slot.Hadamard)
        {
            uint signs = Randomness.Philox.HadamardSigns(Seed, hadamardStream);
            return Quantizer.QuantizeWithSigns(t, slot.Spec, axis, Seed, stream, signs, pad);
        }
        return Quantizer.Quantize(t, slot.Spec, axis, Seed, stream, ema, padBlockAxis: pad);
    }
}
