namespace TetraJet;

/// <summary>
/// One linear-layer configuration as compile-time data. The TetraJet generator emits one struct per distinct
/// configuration in a compilation; <see cref="LinearKernels{TConfig, TFunction}"/> reads it into <c>static readonly</c>
/// fields, which the JIT folds into constants, so each configuration's kernels are specialised.
/// </summary>
public interface ILinearConfig
{
    /// <summary>The recipe, options included, that this configuration stands for.</summary>
    static abstract Recipe Recipe { get; }
}
