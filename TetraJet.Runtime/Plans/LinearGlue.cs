using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// What every configuration's autograd function does around its plan: unpacks the arguments, owns the dispose scopes,
/// hands the step (and what forward kept) to backward, sums db, and releases TorchSharp's dropped handles.
/// </summary>
static class LinearGlue
{
    const string StepKey = "tetrajet";

    /// <summary>vars: x, weight, [bias], the layer, the plan.</summary>
    internal static object[] Arguments(QLinear layer, Tensor x, LinearPlan plan) => layer.bias is null
        ? [x, layer.weight, layer, plan]
        : [x, layer.weight, layer.bias, layer, plan];

    /// <summary>What backward needs besides the step.</summary>
    sealed class Pending
    {
        public required LinearStep Step { get; init; }
        public required LinearPlan Plan { get; init; }
        public required long[] InputShape { get; init; }
        public required bool HasBias { get; init; }
        public int Backwards { get; set; }
    }

    internal static List<Tensor> Forward(autograd.AutogradContext ctx, object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        bool hasBias = vars.Length == 5;
        var b = hasBias ? (Tensor)vars[2] : null;
        var layer = (QLinear)vars[^2];
        var plan = (LinearPlan)vars[^1];

        // Intermediates die here rather than in the caller's scope (or, with none, at the garbage collector's leisure).
        using var scope = NewDisposeScope();
        var step = new LinearStep(layer, layer.Backend ?? QuantBackend.For(x.device), layer.CurrentStep, layer.NeedsBackward, x.dtype, x.device);
        Tensor x2 = x.reshape(-1, layer.InFeatures), wd = w.detach();
        var bd = b?.detach();
        if (step.Autocast is { } t)
        {
            // Mixed precision: the plan quantizes and multiplies in t; its outputs come back in the model's dtypes.
            x2 = x2.to(t);
            wd = wd.to(t);
            bd = bd?.to(t);
        }
        var y = plan.Forward(step, x2, wd, bd);
        layer.LastForwardUsedFp8 = step.UsesFp8;
        layer.LastForwardUsedFp4 = step.UsesFp4;
        var inputShape = x.shape;   // one read: each allocates an array through a callback from native code
        var outShape = (long[])inputShape.Clone();
        outShape[^1] = layer.OutFeatures;
        var output = y.reshape(outShape).MoveToOuterDisposeScope();
        ForwardOutput.Hold(output, ctx);
        if (!step.NeedsBackward) { step.Release(); return [output]; }   // evaluation: nothing to keep
        layer.LastSavedBytes = step.SavedBytes;
        // Held by this object rather than ctx.save_for_backward: on CUDA, where backward runs on autograd's device
        // thread, TorchSharp did not release a custom function's saved tensors. Backward releases them itself.
        ctx.save_data(StepKey, new Pending { Step = step, Plan = plan, InputShape = inputShape, HasBias = hasBias });
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
        var pending = (Pending)ctx.get_data(StepKey);
        var step = pending.Step;
        // TorchSharp wants one entry per argument: none for the layer and the plan.
        List<Tensor> None() => pending.HasBias ? [null!, null!, null!, null!, null!] : [null!, null!, null!, null!];
        if (grads[0] is null || grads[0].IsInvalid)   // no gradient reached the output: none flows on
        {
            step.Release();
            return None();
        }
        if (pending.Backwards++ > 0)
            throw new InvalidOperationException($"{step.Layer.GetName()}: backward ran twice through one forward; retain_graph is not supported by QLinear");
        try
        {
            var layer = step.Layer;
            var dy = grads[0].reshape(-1, layer.OutFeatures);
            var dyc = step.Autocast is { } t ? dy.to(t) : dy;
            var (dx, dw) = pending.Plan.Backward(step, dyc);
            // Only on the steps a caller samples: the other steps pay one flag test.
            if (layer.SampleGradientNoise) layer.MeasureGradientNoise(pending.Plan, step, dyc, dw);
            var result = new List<Tensor> { dx.reshape(pending.InputShape), dw };
            // Summed in FP32 as the reduction reads dY: no FP32 copy of dY is made (on CUDA that copy cost more than the sum).
            if (pending.HasBias) result.Add(dy.sum(0, false, ScalarType.Float32).to(layer.bias!.dtype));
            result.Add(null!);
            result.Add(null!);
            return result;
        }
        finally
        {
            step.Release();
        }
    }
}
