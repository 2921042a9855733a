using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>What the forward pass hands to backward, besides the saved tensors.</summary>
sealed class LinearSaved
{
    public required QLinear Layer { get; init; }
    public required Recipe Recipe { get; init; }
    public required long Step { get; init; }
    public required long[] InputShape { get; init; }
    public required bool HasBias { get; init; }
    public required ScalarType InputType { get; init; }
    public int Backwards { get; set; }
    /// <summary>X̂ (or X) and Ŵ (or W): owned here and disposed by backward, so they never outlive the step.</summary>
    public required SavedOperand X { get; init; }
    public required SavedOperand W { get; init; }
}

/// <summary>
/// Forward and backward of the six-quantizer linear layer (ALGORITHMS.md §4) for one recipe:
/// Y = Q1(X)·Q2(W)ᵀ + b;  dX = Q3(dY)·Q4(Ŵ);  dW = Q5(dY)ᵀ·Q6(X̂);  db = Σ_T dY.
/// </summary>
static class QLinearMath
{
    internal const string SavedKey = "tetrajet";

    /// <summary>vars: x, weight, [bias], QLinear layer, Recipe.</summary>
    internal static List<Tensor> Forward(autograd.AutogradContext ctx, object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        bool hasBias = vars.Length == 5;
        var b = hasBias ? (Tensor)vars[2] : null;
        var layer = (QLinear)vars[^2];
        var recipe = (Recipe)vars[^1];

        // Intermediates die here rather than in the caller's scope (or, with none, at the garbage collector's leisure).
        using var scope = NewDisposeScope();
        var x2 = x.reshape(-1, layer.InFeatures);
        var (xq, wq) = layer.QuantizeForwardOperands(x2, w, recipe);
        var channels = layer.OutControlChannels;   // OutControl: an FP4 and an MXFP8 GEMM, summed (§5)
        var y = channels is null
            ? nn.functional.linear(xq.to(ComputeType(x)), wq.to(ComputeType(x)), b?.to(ComputeType(x)))
            : OutControl.Product(xq.to(ComputeType(x)), wq.to(ComputeType(x)), b?.to(ComputeType(x)), channels);
        var outShape = x.shape.ToArray();
        outShape[^1] = layer.OutFeatures;

        // Double quantization: backward re-quantizes the forward values X̂ and Ŵ, so that is what is kept.
        // The NVIDIA recipe's Q6 starts from the original X instead; Direct sources (a baseline without
        // double quantization) start from X and W.
        var keepX = recipe.Q6.Source is SlotSource.Original or SlotSource.Direct ? x2 : xq;
        var keepW = recipe.Q4.Source == SlotSource.Direct ? w.detach() : wq;
        var output = y.to(x.dtype).reshape(outShape).MoveToOuterDisposeScope();
        ForwardOutput.Hold(output, ctx);
        if (!layer.NeedsBackward) return [output];   // evaluation: nothing to keep
        // Held by this object rather than ctx.save_for_backward: on CUDA, where backward runs on autograd's device
        // thread, TorchSharp did not release a custom function's saved tensors. Backward disposes them itself.
        bool pack = layer.PackSavedOperands;
        var saved = new LinearSaved
        {
            Layer = layer, Recipe = recipe, Step = layer.CurrentStep, InputShape = x.shape,
            HasBias = hasBias, InputType = x.dtype,
            X = SavedOperand.Keep(x2, keepX, recipe.Q1.Spec, pack && ReferenceEquals(keepX, xq) && recipe.Q1.IsQuantized, channels),
            W = SavedOperand.Keep(w, keepW, recipe.Q2.Spec, pack && ReferenceEquals(keepW, wq) && recipe.Q2.IsQuantized, channels),
        };
        layer.LastSavedBytes = saved.X.Bytes + saved.W.Bytes;
        ctx.save_data(SavedKey, saved);
        return [output];
    }

    internal static List<Tensor> Backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        // On CUDA, autograd calls backward on its device thread, where no dispose scope of the caller exists: every
        // tensor made here would wait for the garbage collector, which does not see device memory. So backward owns
        // a scope, frees its gradient inputs, and hands its results to a per-thread list released on the next call
        // (TorchSharp copies them into the graph only after this method returns).
        BackwardResults.ReleasePrevious();
        List<Tensor> result;
        using (var scope = NewDisposeScope())
        {
            result = BackwardCore(ctx, grads);
            foreach (var t in result)
                if (t is not null) scope.MoveToOuter(t);
        }
        foreach (var g in grads) g?.Dispose();
        BackwardResults.Hold(result);
        return result;
    }

    static List<Tensor> BackwardCore(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        var saved = (LinearSaved)ctx.get_data(SavedKey);
        if (grads[0] is null || grads[0].IsInvalid)   // no gradient reached the output: none flows on
        {
            saved.X.Dispose(); saved.W.Dispose();
            return saved.HasBias ? [null!, null!, null!, null!, null!] : [null!, null!, null!, null!];
        }
        if (saved.Backwards++ > 0) throw new InvalidOperationException($"{saved.Layer.GetName()}: backward ran twice through one forward; retain_graph is not supported by QLinear");
        using var xKept = saved.X;
        using var wq = saved.W;
        var layer = saved.Layer;
        var recipe = saved.Recipe;
        var dy = grads[0].reshape(-1, layer.OutFeatures);
        var ct = ComputeType(dy);

        var pair = layer.QuantizeGradientPair(dy, recipe, saved.Step);   // one pass over dY where the recipe allows
        var (dgradDy, dgradW) = layer.QuantizeDgradOperands(dy, wq, recipe, saved.Step, pair?.Q3);
        var dx = dgradDy.to(ct).matmul(dgradW.to(ct)).to(saved.InputType).reshape(saved.InputShape);

        var (wgradDy, wgradX) = layer.QuantizeWgradOperands(dy, xKept, recipe, saved.Step, pair?.Q5);
        var dw = wgradDy.to(ct).t().matmul(wgradX.to(ct));
        // OutControl: the product above is the FP4 part's; the outlier columns come from MXFP8 operands (§5).
        if (xKept.Channels is { } channels) dw = OutControl.Wgrad(dw, dy, xKept.OutlierPart!.Value(), channels, ct);
        dw = dw.to(layer.weight.dtype);

        var result = new List<Tensor> { dx, dw };
        if (saved.HasBias) result.Add(dy.to(ScalarType.Float32).sum(dim: 0).to(layer.bias!.dtype));
        // TorchSharp wants one entry per argument: none for the layer and the recipe.
        result.Add(null!);
        result.Add(null!);
        return result;
    }

    /// <summary>FP32 on CPU; BF16 on CUDA for BF16 inputs (torch accumulates in FP32).</summary>
    static ScalarType ComputeType(Tensor t) => t.device_type == DeviceType.CPU ? ScalarType.Float32 : t.dtype;
}

/// <summary>The autograd function used by layers built from a run-time recipe.</summary>
sealed class DynamicQLinearFunction : autograd.MultiTensorFunction<DynamicQLinearFunction>
{
    public override string Name => nameof(DynamicQLinearFunction);
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars) => QLinearMath.Forward(ctx, vars);
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads) => QLinearMath.Backward(ctx, grads);
}

/// <summary>Forward and backward specialised on <typeparamref name="TConfig"/>.</summary>
static class QLinearAutograd<TConfig> where TConfig : struct, ILinearConfig
{
    internal static List<Tensor> Forward(autograd.AutogradContext ctx, object[] vars) => QLinearMath.Forward(ctx, vars);
    internal static List<Tensor> Backward(autograd.AutogradContext ctx, List<Tensor> grads) => QLinearMath.Backward(ctx, grads);
}
