using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The gradients the last backward call of this thread returned. TorchSharp copies them into the autograd graph
/// after backward returns and never disposes the managed handles, so they are released here, on the thread's next
/// backward call, instead of waiting for the garbage collector (on CUDA, a whole step's gradients per step).
/// </summary>
static class BackwardResults
{
    [ThreadStatic] static List<Tensor>? held;

    internal static void Hold(List<Tensor> results) => held = results;

    internal static void ReleasePrevious()
    {
        if (held is null) return;
        foreach (var t in held) t?.Dispose();
        held = null;
    }
}

/// <summary>
/// The tensor the last forward call of this thread returned. TorchSharp wraps it into a new output tensor and drops
/// the original handle, which would keep the output's memory until the garbage collector ran; the caller of the
/// autograd function releases it right after the call.
/// </summary>
static class ForwardOutput
{
    [ThreadStatic] static Tensor? held;
    [ThreadStatic] static autograd.AutogradContext? heldContext;

    // TorchSharp 0.107 keeps, per function call, an uninitialised tensor shaped like each output, only to stand in
    // for a gradient that never arrives (one output, always used): an output-sized block per layer, held until the
    // graph dies. Dropping it halves a quantized layer's activation memory. Found by name; if absent, nothing changes.
    static readonly FieldInfo? NodeField = typeof(autograd.AutogradContext).GetField("_node", BindingFlags.NonPublic | BindingFlags.Instance);

    internal static void Hold(Tensor output, autograd.AutogradContext ctx) => (held, heldContext) = (output, ctx);

    internal static Tensor Release(Tensor wrapped)
    {
        held?.Dispose();
        held = null;
        if (heldContext is { } ctx && NodeField?.GetValue(ctx) is { } node
            && node.GetType().GetField("_outputCache", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(node) is List<Tensor> cache)
        {
            for (int i = 0; i < cache.Count; i++)
            {
                cache[i]?.Dispose();
                cache[i] = null!;
            }
        }
        heldContext = null;
        return wrapped;
    }
}
