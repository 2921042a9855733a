namespace TetraJet;

/// <summary>
/// Declares a <c>partial QLinear</c> get-only property as a quantized linear layer [outFeatures, inFeatures].
/// The TetraJet generator writes the property body and registers the module under the property name.
/// </summary>
/// <example>
/// Constant sizes, checked against the recipe's block at compile time:
/// <code>[Linear(512, 2048)] public partial QLinear Up { get; }</code>
/// Sizes from members of the model, read when <c>InitializeQuantization()</c> runs (checked then):
/// <code>[Linear(nameof(DModel), nameof(Hidden))] public partial QLinear Up { get; }</code>
/// </example>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class LinearAttribute : Attribute
{
    /// <summary>A layer with constant sizes.</summary>
    public LinearAttribute(int inFeatures, int outFeatures, bool bias = true)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Bias = bias;
    }

    /// <summary>
    /// A layer whose sizes are int fields or properties of the model class, named with <c>nameof(...)</c>; the generated
    /// <c>InitializeQuantization()</c> reads them, so assign them before calling it.
    /// </summary>
    public LinearAttribute(string inFeatures, string outFeatures, bool bias = true)
    {
        InFeaturesMember = inFeatures;
        OutFeaturesMember = outFeatures;
        Bias = bias;
    }

    /// <summary>A layer whose input size is a member of the model and whose output size is a constant (e.g. a classifier head).</summary>
    public LinearAttribute(string inFeatures, int outFeatures, bool bias = true)
    {
        InFeaturesMember = inFeatures;
        OutFeatures = outFeatures;
        Bias = bias;
    }

    /// <summary>A layer whose input size is a constant and whose output size is a member of the model.</summary>
    public LinearAttribute(int inFeatures, string outFeatures, bool bias = true)
    {
        InFeatures = inFeatures;
        OutFeaturesMember = outFeatures;
        Bias = bias;
    }

    /// <summary>The constant input size; 0 when <see cref="InFeaturesMember"/> names it.</summary>
    public int InFeatures { get; }
    /// <summary>The constant output size; 0 when <see cref="OutFeaturesMember"/> names it.</summary>
    public int OutFeatures { get; }
    /// <summary>The int member holding the input size, or null for a constant.</summary>
    public string? InFeaturesMember { get; }
    /// <summary>The int member holding the output size, or null for a constant.</summary>
    public string? OutFeaturesMember { get; }
    public bool Bias { get; }
}
