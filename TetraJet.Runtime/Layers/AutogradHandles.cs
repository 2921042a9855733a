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

    internal static void Hold(Tensor output) => held = output;

    internal static Tensor Release(Tensor wrapped)
    {
        held?.Dispose();
        held = null;
        return wrapped;
    }
}
