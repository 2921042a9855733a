using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The autograd function of a quantized linear layer for one configuration. Generated code declares
/// <c>sealed class XFunction : QLinearFunction&lt;XFunction, XConfig&gt; { }</c>, so every configuration has its own
/// TorchSharp function type (TorchSharp keeps one instance per type) with its constants baked in.
/// </summary>
public abstract class QLinearFunction<TSelf, TConfig> : autograd.MultiTensorFunction<TSelf>
    where TSelf : QLinearFunction<TSelf, TConfig>, new()
    where TConfig : struct, ILinearConfig
{
    public override string Name => typeof(TSelf).Name;

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        => QLinearAutograd<TConfig>.Forward(ctx, vars);

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        => QLinearAutograd<TConfig>.Backward(ctx, grads);
}
