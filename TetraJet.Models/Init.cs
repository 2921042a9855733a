using static TorchSharp.torch;

namespace TetraJet.Models;

/// <summary>Weight initialisers.</summary>
public static class Init
{
    /// <summary>
    /// Normal(0, σ) truncated at ±2σ by redrawing the values outside (as PyTorch's trunc_normal_ does).
    /// Written here because TorchSharp 0.107's <c>nn.init.trunc_normal_</c> fills the tensor with a constant.
    /// </summary>
    public static void TruncNormal(Tensor t, double std)
    {
        // The scope holds every temporary until the end: one left to the finalizer can be freed while libtorch still
        // reads it (the model constructors call this outside any training step's scope).
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        t.normal_(0, std);
        for (int round = 0; round < 100; round++)
        {
            using var outside = t.abs() > 2 * std;
            if (!outside.any().item<bool>()) return;
            using var fresh = empty_like(t).normal_(0, std);
            t.copy_(where(outside, fresh, t));
        }
        t.clamp_(-2 * std, 2 * std);
    }
}
