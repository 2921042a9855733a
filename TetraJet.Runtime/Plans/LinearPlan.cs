using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// The forward and backward dataflow of one linear configuration (the six slots of ALGORITHMS.md §4 and the
/// options that change the dataflow): which quantizers run, which share a read, what is kept for backward, the three
/// GEMMs. Generated code writes one subclass per configuration as straight-line code with the configuration's
/// kernels; <see cref="DynamicPlan"/> interprets a recipe known only at run time.
/// </summary>
public abstract class LinearPlan
{
    protected LinearPlan(Recipe recipe) => Recipe = recipe ?? throw new ArgumentNullException(nameof(recipe));

    /// <summary>The recipe this plan implements, options included.</summary>
    public Recipe Recipe { get; }

    /// <summary>True for a plan generated from the configuration at compile time.</summary>
    public abstract bool IsGenerated { get; }

    /// <summary>Y = layer(x) through this plan's autograd function (x: [..., K]).</summary>
    public abstract Tensor Apply(QLinear layer, Tensor x);

    /// <summary>Y [T, N] from x [T, K], w [N, K] and b; keeps what backward needs in <paramref name="s"/>.</summary>
    public abstract Tensor Forward(LinearStep s, Tensor x, Tensor w, Tensor? b);

    /// <summary>dX [T, K] and dW [N, K] from dY [T, N] and what forward kept (db is summed by the caller).</summary>
    public abstract (Tensor Dx, Tensor Dw) Backward(LinearStep s, Tensor dy);

    public override string ToString() => $"{GetType().Name} ({Recipe.Name})";
}

/// <summary>
/// The autograd function of a plan: its own type per configuration (TorchSharp keeps one instance per type), with the
/// glue every configuration shares — dispose scopes, argument unpacking, the bias gradient — around the plan's
/// <see cref="LinearPlan.Forward"/> and <see cref="LinearPlan.Backward"/>.
/// </summary>
public abstract class LinearFunction<TSelf> : autograd.MultiTensorFunction<TSelf> where TSelf : LinearFunction<TSelf>, new()
{
    public override string Name => typeof(TSelf).DeclaringType?.Name ?? typeof(TSelf).Name;

    /// <summary>Runs <paramref name="plan"/> on <paramref name="x"/> for <paramref name="layer"/> through this function.</summary>
    public static Tensor Run(QLinear layer, Tensor x, LinearPlan plan) => ForwardOutput.Release(apply(LinearGlue.Arguments(layer, x, plan))[0]);

    public sealed override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars) => LinearGlue.Forward(ctx, vars);

    public sealed override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads) => LinearGlue.Backward(ctx, grads);
}
