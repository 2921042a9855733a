using TetraJet.Plans;
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

    /// <summary>The layer's recipe, options included.</summary>
    public Recipe Recipe { get; }

    /// <summary>
    /// The dataflow this layer runs: the generated plan of its configuration (generated code passes it, and the plain
    /// runtime API finds it when the program has one), else the unspecialised plan.
    /// </summary>
    public LinearPlan Plan { get; }

    internal long CurrentStep { get; private set; }

    /// <summary>
    /// Keep X̂ and Ŵ for backward in FP4 storage form (codes and scales, about a quarter of BF16) rather than
    /// dequantized. On by default; off trades that memory for two fewer passes per step.
    /// </summary>
    public bool PackSavedOperands { get; set; } = true;

    /// <summary>
    /// On CUDA, run Q4 and Q6 from X̂'s and Ŵ's storage forms on a side stream, beside Q3 + Q5 and the dgrad GEMM (they
    /// read only what forward kept); the default stream waits for each before its GEMM. The same bits either way; on
    /// by default, off runs them in line on torch's stream.
    /// </summary>
    public bool OverlapBackward { get; set; } = true;

    /// <summary>Whether the current forward builds a graph (gradient mode on, something requires a gradient): else nothing is saved.</summary>
    internal bool NeedsBackward { get; private set; }

    /// <summary>Bytes the last training forward kept for backward (X̂ and Ŵ, packed or not): this layer's activation memory.</summary>
    public long LastSavedBytes { get; internal set; }

    public QLinear(int inFeatures, int outFeatures, Recipe recipe, bool bias = true, string name = "QLinear", LinearPlan? plan = null)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"{name}: in and out features must be positive, got [{outFeatures}, {inFeatures}]");
        if (plan is not null && PlanKey.Of(plan.Recipe) != PlanKey.Of(recipe))
            throw new ArgumentException($"{name}: the plan ({plan}) is not the configuration of recipe {recipe.Name}");
        recipe.EnsureTransformsCancel(name);
        Recipe = recipe;
        int multiple = recipe.FeatureMultiple;
        if (inFeatures % multiple != 0)
            throw new ArgumentException($"{name}: in_features (K) = {inFeatures} is not a multiple of {multiple}, the block size {recipe.Name} needs");
        if (outFeatures % multiple != 0)
            throw new ArgumentException($"{name}: out_features (N) = {outFeatures} is not a multiple of {multiple}, the block size {recipe.Name} needs");
        Plan = plan ?? PlanRegistry.For(recipe);
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
        if (input.size(-1) != InFeatures)
            throw new ArgumentException($"{GetName()}: input has {input.size(-1)} features in its last dimension (shape [{string.Join(", ", input.shape)}]); this layer expects {InFeatures}");
        if (input.dtype != ScalarType.Float32 && input.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"{GetName()}: input is {input.dtype}; expected float32 or bfloat16");
        CurrentStep = Step;
        NeedsBackward = is_grad_enabled() && (input.requires_grad || weight.requires_grad || bias?.requires_grad == true);
        if (is_grad_enabled() && training)
        {
            CheckTrainingProtocol();
            Step++;
            // Statistics are gathered here: inside the autograd function gradient mode is off.
            if (_outControl)
            {
                // Held to the end of the block: a temporary nothing references can be freed by the finalizer mid-call.
                using var rows = input.reshape(-1, InFeatures);
                CollectChannelNorms(rows);
            }
        }
        return Plan.Apply(this, input);
    }

    /// <summary>
    /// Where this layer's quantizers run: null (the default) for its device's backend (CPU SIMD or CUDA); set to
    /// <see cref="QuantBackend.Reference"/> to run the scalar reference, which the fast backends must equal bit for bit.
    /// </summary>
    public QuantBackend? Backend { get; set; }

    /// <summary>
    /// Mixed precision for this layer, as <c>torch.autocast</c> gives linear layers: with bfloat16 the quantizers read
    /// X and W cast to bfloat16 and the GEMMs run in bfloat16 (accumulating in FP32), while the weights, their
    /// gradients and the layer's output stay in the model's dtype. Null (the default) computes in the input's dtype
    /// (float32 GEMMs on the CPU).
    /// </summary>
    public ScalarType? Autocast { get; set; }

    /// <summary>
    /// Called with each quantized operand as the GEMMs consume it (slot 1–6: X̂, Ŵ, Q3(dY), Q4(Ŵ), Q5(dY), Q6(X̂)), on
    /// the device and in the dtype of the step; for checks and diagnostics. Null (the default) costs nothing.
    /// </summary>
    public Action<int, Tensor>? OperandProbe { get; set; }
}
