namespace TetraJet;

/// <summary>
/// Replaces one quantizer of the effective <c>[Quantize]</c> recipe, for quantizer-by-quantizer ablations: on the
/// model class (all its <c>[Linear]</c> layers) or on one <c>[Linear]</c> property (over the class's overrides of the
/// same slot). More than one is allowed, one per slot and target. Read at compile time by the TetraJet generator, whose
/// code builds the layer's recipe with <see cref="Recipe.WithSlot"/>; that method documents the defaults, and
/// <see cref="ApplyTo"/> applies this attribute the same way.
/// </summary>
/// <example>
/// <code>[Quantize(Recipe.TetraJet), QuantizeSlot(Slot.Q3, Format.MXFP4, Rounding = Rounding.Nearest)]</code>
/// <code>[Linear(512, 512), QuantizeSlot(Slot.Q5, Format.BF16)] public partial QLinear Proj { get; }</code>
/// </example>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = true, Inherited = false)]
public sealed class QuantizeSlotAttribute : Attribute
{
    private Rounding? _rounding;
    private bool? _hadamard;
    private ScaleRule? _scaleRule;

    public QuantizeSlotAttribute(Slot slot, Format format)
    {
        Slot = slot;
        Format = format;
    }

    public Slot Slot { get; }
    public Format Format { get; }

    /// <summary>Nearest or Stochastic; unset, the recipe slot's (see <see cref="Recipe.WithSlot"/>), and it reads as Nearest.</summary>
    public Rounding Rounding { get => _rounding ?? Rounding.Nearest; set => _rounding = value; }

    /// <summary>Whether the slot applies the random Hadamard transform; unset, the recipe slot's, and it reads as false.</summary>
    public bool Hadamard { get => _hadamard ?? false; set => _hadamard = value; }

    /// <summary>MXFP4's scale rule; unset, the recipe slot's, and it reads as TetraJet.</summary>
    public ScaleRule ScaleRule { get => _scaleRule ?? ScaleRule.TetraJet; set => _scaleRule = value; }

    /// <summary><paramref name="recipe"/> with this override applied: what the generated code builds.</summary>
    public Recipe ApplyTo(Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return recipe.WithSlot(Slot, Format, _rounding, _hadamard, _scaleRule);
    }
}
