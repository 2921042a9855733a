namespace TetraJet.Generators;

// The generator's model: plain equatable data, no symbols, syntax or locations, so that an edit that changes none of
// it (a comment, whitespace) leaves every step cached. Diagnostics are not part of it: the analyzers report them.

/// <summary>One type declaration around (and including) an annotated class, outermost first.</summary>
/// <param name="Keyword">The declaration keyword(s): <c>class</c>, <c>struct</c>, <c>record</c>, <c>record struct</c>, <c>interface</c>.</param>
/// <param name="NameWithTypeParameters">E.g. <c>Mixer</c> or <c>Block&lt;T&gt;</c>.</param>
internal sealed record TypeDeclarationSpec(string Keyword, string NameWithTypeParameters, string Name, bool IsPartial);

/// <summary>The model class that declares <c>[Linear]</c> properties.</summary>
/// <param name="Namespace">Null in the global namespace.</param>
/// <param name="Declarations">Containing types, outermost first, then the class itself.</param>
/// <param name="FullName">Unique within the compilation; used to group properties and to name the generated file.</param>
/// <param name="IsModule">Derives from <c>TorchSharp.torch.nn.Module</c>.</param>
/// <param name="UsesRuntimeRecipe">
/// The declaration calls <c>InitializeQuantization(recipe)</c>: any recipe can be chosen at run time, so the compilation
/// generates the plans of the named recipes too.
/// </param>
internal sealed record ClassSpec(
    string? Namespace,
    EquatableArray<TypeDeclarationSpec> Declarations,
    string FullName,
    bool IsClass,
    bool IsModule,
    bool UsesRuntimeRecipe)
{
    public TypeDeclarationSpec Self => Declarations[Declarations.Count - 1];
}

/// <summary>An in/out features argument: a constant, or the name of an int member read at run time.</summary>
/// <param name="Expression">The C# expression to emit (<c>512</c>, <c>this.DModel</c>); null when the argument is invalid.</param>
/// <param name="Fits">A constant is a positive multiple of the configuration's block (TJ1003 otherwise).</param>
internal sealed record SizeSpec(int? Constant, string? Member, string? Expression, bool Fits = true)
{
    public bool IsValid => Expression is not null && Fits;
}

/// <summary>One <c>[Linear]</c> property, parsed.</summary>
/// <param name="Modifiers">The declaration's modifiers, repeated on the implementation (they must match).</param>
/// <param name="TypeNullable">Declared as <c>QLinear?</c>.</param>
/// <param name="HasValidShape">Partial, get-only, instance, of type QLinear: the generator can implement it.</param>
/// <param name="Config">The effective configuration; null when its <c>[Quantize]</c> or <c>[QuantizeSlot]</c>s have errors.</param>
/// <param name="HasOwnQuantize">A property-level <c>[Quantize]</c>: the run-time recipe overload leaves the layer alone.</param>
/// <param name="Overrides">The <c>[QuantizeSlot]</c>s that apply, as written: the run-time recipe overload applies them to its recipe.</param>
/// <param name="Order">Member indices from the file's root down to the property: layers are created in declaration order.</param>
internal sealed record LinearPropertySpec(
    ClassSpec Class,
    string Name,
    string Modifiers,
    bool TypeNullable,
    bool HasValidShape,
    SizeSpec In,
    SizeSpec Out,
    bool Bias,
    ConfigSpec? Config,
    bool HasOwnQuantize,
    EquatableArray<SlotOverrideSpec> Overrides,
    string FilePath,
    EquatableArray<int> Order)
{
    /// <summary>Everything needed to construct the layer is valid.</summary>
    public bool CanConstruct => HasValidShape && In.IsValid && Out.IsValid && Config is not null;
}

/// <summary>A model class with its layers.</summary>
internal sealed record ModelSpec(
    ClassSpec Class,
    EquatableArray<LinearPropertySpec> Layers)
{
    /// <summary>The class and its containing types are partial (in every part that declares layers): a generated part can be added.</summary>
    public bool IsPartial => System.Linq.Enumerable.All(Layers, l => System.Linq.Enumerable.All(l.Class.Declarations, d => d.IsPartial));

    /// <summary>Partial and a module: the full generated part compiles.</summary>
    public bool CanEmit => IsPartial && Class.IsClass && Class.IsModule;
}
