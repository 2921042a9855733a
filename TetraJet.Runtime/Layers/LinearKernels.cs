using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The kernel set a <see cref="QLinear"/> runs: forward quantizers, the autograd function and the backward
/// quantizers of one configuration. <see cref="For(Recipe)"/> builds one from a recipe at run time;
/// generated code passes <see cref="Create{TConfig, TFunction}"/> with its configuration baked in.
/// </summary>
public abstract class LinearKernels
{
    public abstract Recipe Recipe { get; }

    /// <summary>Y = layer(x) through this configuration's autograd function.</summary>
    public abstract Tensor Apply(QLinear layer, Tensor x);

    /// <summary>Kernels for a recipe known only at run time (the plain runtime API).</summary>
    public static LinearKernels For(Recipe recipe) => new DynamicLinearKernels(recipe);

    /// <summary>Kernels specialised on a generated configuration and its autograd function type.</summary>
    public static LinearKernels Create<TConfig, TFunction>()
        where TConfig : struct, ILinearConfig
        where TFunction : QLinearFunction<TFunction, TConfig>, new()
        => LinearKernels<TConfig, TFunction>.Instance;

    private protected static object[] Args(QLinear layer, Tensor x, Recipe recipe) => layer.bias is null
        ? [x, layer.weight, layer, recipe]
        : [x, layer.weight, layer.bias, layer, recipe];
}

/// <summary>Kernels specialised on <typeparamref name="TConfig"/>.</summary>
public sealed class LinearKernels<TConfig, TFunction> : LinearKernels
    where TConfig : struct, ILinearConfig
    where TFunction : QLinearFunction<TFunction, TConfig>, new()
{
    internal static readonly LinearKernels<TConfig, TFunction> Instance = new();
    static readonly Recipe Config = TConfig.Recipe;

    public override Recipe Recipe => Config;

    public override Tensor Apply(QLinear layer, Tensor x) => ForwardOutput.Release(QLinearFunction<TFunction, TConfig>.apply(Args(layer, x, Config))[0]);
}

sealed class DynamicLinearKernels(Recipe recipe) : LinearKernels
{
    public override Recipe Recipe { get; } = recipe;

    public override Tensor Apply(QLinear layer, Tensor x) => ForwardOutput.Release(DynamicQLinearFunction.apply(Args(layer, x, Recipe))[0]);
}
