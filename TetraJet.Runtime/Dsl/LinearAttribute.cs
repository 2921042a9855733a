namespace TetraJet;

/// <summary>
/// Declares a <c>partial QLinear</c> get-only property as a quantized linear layer [outFeatures, inFeatures].
/// The TetraJet generator writes the property body and registers the module under the property name.
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class LinearAttribute : Attribute
{
    public LinearAttribute(int inFeatures, int outFeatures, bool bias = true)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Bias = bias;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public bool Bias { get; }
}
