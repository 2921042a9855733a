using static TorchSharp.torch;

namespace TetraJet;

/// <summary>Forward and backward of the six-quantizer linear layer, specialised on <typeparamref name="TConfig"/>.</summary>
static class QLinearAutograd<TConfig> where TConfig : struct, ILinearConfig
{
    internal static List<Tensor> Forward(autograd.AutogradContext ctx, object[] vars) => throw new InvalidOperationException("pending");
    internal static List<Tensor> Backward(autograd.AutogradContext ctx, List<Tensor> grads) => throw new InvalidOperationException("pending");
}
