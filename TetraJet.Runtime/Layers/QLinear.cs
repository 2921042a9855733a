using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// A fully-quantized linear layer: Y = Q1(X)·Q2(W)ᵀ + b, with dX and dW computed from FP4 operands
/// as the recipe's six quantizer slots say (ALGORITHMS.md §4). Input [..., K], output [..., N].
/// </summary>
public sealed class QLinear : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    public Parameter? bias;

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Recipe Recipe { get; }

    /// <summary>The kernel set this layer runs (generated code passes a specialised one).</summary>
    public LinearKernels Kernels { get; }

    public QLinear(int inFeatures, int outFeatures, Recipe recipe, bool bias = true, string name = "QLinear", LinearKernels? kernels = null)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        Kernels = kernels ?? LinearKernels.For(recipe);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Recipe = recipe;
        weight = new Parameter(empty(outFeatures, inFeatures));
        this.bias = bias ? new Parameter(empty(outFeatures)) : null;
        ResetParameters();
        RegisterComponents();
    }

    /// <summary>Kaiming-uniform weights and uniform bias, as <c>nn.Linear</c> initialises them.</summary>
    public void ResetParameters()
    {
        using var _ = no_grad();
        var bound = 1.0 / Math.Sqrt(InFeatures);
        nn.init.uniform_(weight, -bound, bound);
        if (bias is not null) nn.init.uniform_(bias, -bound, bound);
    }

    public override Tensor forward(Tensor input) => nn.functional.linear(input, weight, bias);
}
