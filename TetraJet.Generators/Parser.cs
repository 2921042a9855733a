using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TetraJet.Generators;

/// <summary>
/// Turns attributed syntax into equatable specs. Nothing here keeps a symbol or a syntax node, and nothing throws on
/// half-typed code: whatever cannot be read is left out (the compiler reports it) or becomes a diagnostic.
/// </summary>
internal static class Parser
{
    private const string InFeatures = "inFeatures";
    private const string OutFeatures = "outFeatures";

    // ---- [Quantize] targets: option checks ----

    public static QuantizeTargetSpec ParseQuantizeTarget(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var diagnostics = new List<DiagnosticInfo>();
        foreach (var attribute in context.Attributes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ParseConfig(attribute, diagnostics, cancellationToken);
        }
        return new QuantizeTargetSpec(diagnostics.ToEquatableArray());
    }

    /// <summary>
    /// Reads a <c>[Quantize]</c> attribute into a configuration; null when it cannot be read or has errors.
    /// Option diagnostics go to <paramref name="diagnostics"/> when given.
    /// </summary>
    public static ConfigSpec? ParseConfig(AttributeData attribute, List<DiagnosticInfo>? diagnostics, CancellationToken cancellationToken)
    {
        var constructor = attribute.AttributeConstructor;
        if (constructor is null || constructor.Parameters.Length != 1 || attribute.ConstructorArguments.Length != 1) return null;
        if (attribute.ConstructorArguments[0].Value is not int raw) return null;

        RecipeKind recipe;
        switch (constructor.Parameters[0].Type.Name)
        {
            case "Format" when Enum.IsDefined(typeof(FormatKind), raw):
                recipe = RecipeTable.ForFormat((FormatKind)raw);
                break;
            case "RecipeId" when Enum.IsDefined(typeof(RecipeKind), raw):
                recipe = (RecipeKind)raw;
                break;
            default:
                return null;
        }

        var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        var named = new Dictionary<string, TypedConstant>(StringComparer.Ordinal);
        foreach (var pair in attribute.NamedArguments)
        {
            if (pair.Value.Kind != TypedConstantKind.Error && pair.Value.Value is not null) named[pair.Key] = pair.Value;
        }

        bool Flag(string name) => named.TryGetValue(name, out var value) && value.Value is bool b && b;
        double Number(string name, double fallback) => named.TryGetValue(name, out var value) ? ToDouble(value.Value, fallback) : fallback;
        LocationInfo? Where(string name) => LocationInfo.From(FindNamedArgument(syntax, name)) ?? LocationInfo.From(syntax);

        var qEma = Flag("QEma");
        var qRamping = Flag("QRamping");
        var osciReset = Flag("OsciReset");
        var osciResetLean = Flag("OsciResetLean");
        var outControl = Flag("OutControl");
        var emaDecay = Number("EmaDecay", ConfigSpec.DefaultEmaDecay);
        var threshold = Number("OsciResetThreshold", ConfigSpec.DefaultOsciResetThreshold);
        var leanFraction = Number("OsciResetLeanFraction", ConfigSpec.DefaultOsciResetLeanFraction);
        var outliers = Number("OutlierFraction", ConfigSpec.DefaultOutlierFraction);
        var ocp = named.TryGetValue("ScaleRule", out var rule) && rule.Value is int r && r == 1;

        var format = RecipeTable.FormatOf(recipe);
        var recipeName = recipe.ToString();
        var valid = true;

        // Range errors.
        if (named.ContainsKey("EmaDecay") && !(emaDecay > 0 && emaDecay < 1))
        {
            diagnostics?.Add(DiagnosticInfo.Create(DiagnosticDescriptors.EmaDecayOutOfRange, Where("EmaDecay"), ConfigSpec.Literal(emaDecay)));
            valid = false;
        }
        if (named.ContainsKey("OsciResetThreshold") && !(threshold > 1))
        {
            diagnostics?.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OsciResetThresholdOutOfRange, Where("OsciResetThreshold"), ConfigSpec.Literal(threshold)));
            valid = false;
        }
        if (named.ContainsKey("OsciResetLeanFraction") && !(leanFraction > 0 && leanFraction <= 1))
        {
            diagnostics?.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OsciResetLeanFractionOutOfRange, Where("OsciResetLeanFraction"), ConfigSpec.Literal(leanFraction)));
            valid = false;
        }
        if (named.ContainsKey("OutlierFraction") && !(outliers > 0 && outliers <= 0.5))
        {
            diagnostics?.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OutlierFractionOutOfRange, Where("OutlierFraction"), ConfigSpec.Literal(outliers)));
            valid = false;
        }

        // Options that the recipe ignores: warnings, the configuration keeps them as written.
        void NoEffect(string option, string why)
            => diagnostics?.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OptionHasNoEffect, Where(option), option, recipeName, why));

        if (format != FormatKind.MXFP4)
        {
            if (qEma) NoEffect("QEma", "Q-EMA guides the rounding of MXFP4 weights only");
            if (qRamping) NoEffect("QRamping", "Q-Ramping damps MXFP4 weight oscillation only");
            if (ocp) NoEffect("ScaleRule", "the OCP scale rule applies to MXFP4 blocks only");
        }
        if (format == FormatKind.BF16)
        {
            if (osciReset) NoEffect("OsciReset", "BF16 weights are not quantized, so they do not oscillate");
            if (outControl) NoEffect("OutControl", "BF16 inputs are not quantized, so there are no outliers to keep");
        }
        if (named.ContainsKey("EmaDecay") && !qEma) NoEffect("EmaDecay", "it is read only when QEma = true");
        if (named.ContainsKey("OsciResetThreshold") && !osciReset) NoEffect("OsciResetThreshold", "it is read only when OsciReset = true");
        if (osciResetLean && !osciReset) NoEffect("OsciResetLean", "it is read only when OsciReset = true");
        if (named.ContainsKey("OsciResetLeanFraction") && !osciResetLean) NoEffect("OsciResetLeanFraction", "it is read only when OsciResetLean = true");
        if (named.ContainsKey("OutlierFraction") && !outControl) NoEffect("OutlierFraction", "it is read only when OutControl = true");

        if (!valid) return null;

        // The Microscaling recipe is TetraJet's MXFP4 with the OCP scale rule.
        if (ocp && recipe == RecipeKind.TetraJet) recipe = RecipeKind.Microscaling;

        return new ConfigSpec(recipe, qEma, emaDecay, qRamping, osciReset, threshold, osciResetLean, leanFraction, outControl, outliers);
    }

    // ---- [Linear] properties ----

    public static LinearPropertySpec? ParseLinearProperty(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetNode is not PropertyDeclarationSyntax property || context.TargetSymbol is not IPropertySymbol symbol) return null;
        if (symbol.ContainingType is not { } type || property.Parent is not TypeDeclarationSyntax typeSyntax) return null;
        if (context.Attributes.IsEmpty) return null;

        var classSpec = ParseClass(type, typeSyntax);
        var diagnostics = new List<DiagnosticInfo>();
        var name = symbol.Name;

        // Shape: the generator can implement only 'partial QLinear Name { get; }'.
        var problem = ShapeProblem(property, symbol);
        if (problem is not null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLinearProperty, LocationInfo.From(property.Identifier), name, problem));
        }

        // The effective configuration: the property's [Quantize], else the class's, else BF16.
        var own = FindAttribute(symbol.GetAttributes(), KnownNames.QuantizeAttribute);
        var classLevel = FindAttribute(type.GetAttributes(), KnownNames.QuantizeAttribute);
        var config = own is not null ? ParseConfig(own, null, cancellationToken)
            : classLevel is not null ? ParseConfig(classLevel, null, cancellationToken)
            : ConfigSpec.Bf16;

        var attribute = context.Attributes[0];
        var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        var compilation = context.SemanticModel.Compilation;
        var invalid = new SizeSpec(null, null, null);
        SizeSpec inSize = invalid, outSize = invalid;
        var bias = true;
        var constructor = attribute.AttributeConstructor;
        if (constructor is not null && attribute.ConstructorArguments.Length == constructor.Parameters.Length && constructor.Parameters.Length >= 2)
        {
            inSize = ParseSize(attribute, syntax, 0, InFeatures, name, type, compilation, config, diagnostics);
            outSize = ParseSize(attribute, syntax, 1, OutFeatures, name, type, compilation, config, diagnostics);
            if (attribute.ConstructorArguments.Length >= 3 && attribute.ConstructorArguments[2].Value is bool b) bias = b;
        }

        var modifiers = string.Join(" ", property.Modifiers.Select(m => m.Text));
        var nullable = symbol.Type.NullableAnnotation == NullableAnnotation.Annotated;
        return new LinearPropertySpec(
            classSpec, name, modifiers, nullable, problem is null, inSize, outSize, bias, config, own is not null,
            diagnostics.ToEquatableArray(), property.SyntaxTree.FilePath, property.SpanStart);
    }

    private static string? ShapeProblem(PropertyDeclarationSyntax property, IPropertySymbol symbol)
    {
        if (symbol.IsStatic) return "is static; it must be an instance property";
        if (!property.Modifiers.Any(SyntaxKind.PartialKeyword)) return "is not partial; add the 'partial' modifier";
        var getOnly = property.ExpressionBody is null
            && property.Initializer is null
            && property.AccessorList is { Accessors: { Count: 1 } accessors }
            && accessors[0].IsKind(SyntaxKind.GetAccessorDeclaration)
            && accessors[0].Body is null && accessors[0].ExpressionBody is null;
        if (!getOnly) return "must be a get-only declaration without a body ('{ get; }')";
        if (symbol.Type is not INamedTypeSymbol { Name: "QLinear" } t || t.ContainingNamespace?.ToDisplayString() != "TetraJet")
        {
            return "is of type '" + symbol.Type.ToDisplayString() + "'; it must be of type TetraJet.QLinear";
        }
        return null;
    }

    private static SizeSpec ParseSize(
        AttributeData attribute, AttributeSyntax? syntax, int index, string parameter, string layer,
        INamedTypeSymbol type, Compilation compilation, ConfigSpec? config, List<DiagnosticInfo> diagnostics)
    {
        var invalid = new SizeSpec(null, null, null);
        var argument = attribute.ConstructorArguments[index];
        var location = LocationInfo.From(FindConstructorArgument(syntax, attribute.AttributeConstructor!, index)) ?? LocationInfo.From(syntax);
        switch (argument.Value)
        {
            case int value:
                if (value <= 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.FeaturesNotPositive, location, parameter, Text(value), layer));
                    return invalid;
                }
                var multiple = config?.FeatureMultiple ?? 1;
                if (value % multiple != 0)
                {
                    var suggestion = ((long)value / multiple + 1) * multiple;   // long: no overflow near int.MaxValue
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.FeaturesNotMultipleOfBlock, location, parameter, Text(value), layer, Text(multiple),
                        RecipeTable.BlockDescription(config!.Recipe), config.Recipe.ToString(), suggestion.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
                else if (parameter == InFeatures && config is { OutControl: true } && config.Format != FormatKind.BF16
                    && OutControlChannels.KeepsPlainFp4(value, config.OutlierFraction))
                {
                    var outliers = OutControlChannels.OutlierCount(value, config.OutlierFraction);
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.OutControlLeavesTooFewChannels, location, layer, Text(value), ConfigSpec.Literal(config.OutlierFraction),
                        Text(outliers), Text(value - outliers), OutControlChannels.SmallestWidth(value, multiple, config.OutlierFraction).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
                return new SizeSpec(value, null, Text(value));

            case string member:
                var found = FindIntMember(type, member, compilation);
                if (found is null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.SizeMemberNotFound, location, parameter, layer, member, type.Name));
                    return invalid;
                }
                return new SizeSpec(null, member, found.IsStatic ? member : "this." + member);

            default:
                // A missing or mistyped argument: the compiler already reports it.
                return invalid;
        }
    }

    /// <summary>An accessible int field or readable int property named <paramref name="name"/>, in the type or a base type.</summary>
    private static ISymbol? FindIntMember(INamedTypeSymbol type, string name, Compilation compilation)
    {
        if (string.IsNullOrEmpty(name)) return null;
        for (var current = type; current is not null; current = current.BaseType)
        {
            foreach (var member in current.GetMembers(name))
            {
                var isInt = member switch
                {
                    IFieldSymbol field => field.Type.SpecialType == SpecialType.System_Int32,
                    IPropertySymbol prop => prop.Type.SpecialType == SpecialType.System_Int32 && !prop.IsIndexer && prop.GetMethod is not null,
                    _ => false,
                };
                if (isInt && compilation.IsSymbolAccessibleWithin(member, type)) return member;
            }
        }
        return null;
    }

    private static ClassSpec ParseClass(INamedTypeSymbol type, TypeDeclarationSyntax typeSyntax)
    {
        // Containing type declarations come from the syntax the property sits in: that is the part the generator extends.
        var declarations = new List<TypeDeclarationSpec>();
        var symbols = new List<INamedTypeSymbol>();
        for (var t = type; t is not null; t = t.ContainingType) symbols.Insert(0, t);
        var syntaxes = new List<TypeDeclarationSyntax>();
        for (SyntaxNode? node = typeSyntax; node is not null; node = node.Parent)
        {
            if (node is TypeDeclarationSyntax declaration) syntaxes.Insert(0, declaration);
        }

        for (var i = 0; i < syntaxes.Count; i++)
        {
            var declaration = syntaxes[i];
            var k = i + symbols.Count - syntaxes.Count;
            var symbol = k >= 0 && k < symbols.Count ? symbols[k] : null;
            var typeParameters = symbol is { TypeParameters.Length: > 0 }
                ? "<" + string.Join(", ", symbol.TypeParameters.Select(p => p.Name)) + ">"
                : "";
            var name = declaration.Identifier.ValueText;
            declarations.Add(new TypeDeclarationSpec(
                Keyword(declaration), name + typeParameters, name,
                declaration.Modifiers.Any(SyntaxKind.PartialKeyword), LocationInfo.From(declaration.Identifier)));
        }

        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : null;
        var fullName = string.Join(".", symbols.Select(s => s.MetadataName));
        if (ns is not null) fullName = ns + "." + fullName;
        return new ClassSpec(ns, declarations.ToEquatableArray(), fullName, type.TypeKind == TypeKind.Class, DerivesFromModule(type));
    }

    private static string Keyword(TypeDeclarationSyntax declaration) => declaration switch
    {
        RecordDeclarationSyntax record => record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) ? "record struct" : "record",
        StructDeclarationSyntax => "struct",
        InterfaceDeclarationSyntax => "interface",
        _ => "class",
    };

    /// <summary>True when a base type is <c>TorchSharp.torch.nn.Module</c> (or one of its generic forms).</summary>
    private static bool DerivesFromModule(INamedTypeSymbol type)
    {
        for (var t = type.BaseType; t is not null; t = t.BaseType)
        {
            if (t is { Name: "Module", ContainingType: { Name: "nn", ContainingType: { Name: "torch" } torch } }
                && torch.ContainingNamespace?.ToDisplayString() == "TorchSharp")
            {
                return true;
            }
        }
        return false;
    }

    // ---- Grouping: properties → models → configurations ----

    public static EquatableArray<ModelSpec> GroupModels(ImmutableArray<LinearPropertySpec> properties, CancellationToken cancellationToken)
    {
        var groups = new Dictionary<string, List<LinearPropertySpec>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var property in properties)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!groups.TryGetValue(property.Class.FullName, out var list))
            {
                groups[property.Class.FullName] = list = new List<LinearPropertySpec>();
                order.Add(property.Class.FullName);
            }
            list.Add(property);
        }

        var models = new List<ModelSpec>();
        foreach (var key in order.OrderBy(k => k, StringComparer.Ordinal))
        {
            var layers = groups[key]
                .OrderBy(p => p.FilePath, StringComparer.Ordinal).ThenBy(p => p.Order)
                .ToList();
            var diagnostics = new List<DiagnosticInfo>();
            var seen = new HashSet<LocationInfo?>();
            var canEmit = true;
            foreach (var classSpec in layers.Select(l => l.Class).Distinct())
            {
                foreach (var declaration in classSpec.Declarations)
                {
                    if (declaration.IsPartial) continue;
                    canEmit = false;
                    if (seen.Add(declaration.IdentifierLocation))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ClassNotPartial, declaration.IdentifierLocation, declaration.Name));
                    }
                }
            }
            var first = layers[0].Class;
            if (!first.IsClass || !first.IsModule)
            {
                canEmit = false;
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotAModule, first.Self.IdentifierLocation, first.Self.Name));
            }
            models.Add(new ModelSpec(first, layers.ToEquatableArray(), diagnostics.ToEquatableArray(), canEmit));
        }
        return models.ToEquatableArray();
    }

    /// <summary>The distinct configurations that generated code constructs, in a stable order.</summary>
    public static EquatableArray<ConfigSpec> CollectConfigs(EquatableArray<ModelSpec> models)
    {
        var configs = new Dictionary<string, ConfigSpec>(StringComparer.Ordinal);
        foreach (var model in models)
        {
            if (!model.CanEmit) continue;
            foreach (var layer in model.Layers)
            {
                if (layer.CanConstruct && layer.Config is { } config) configs[config.Name] = config;
            }
        }
        return configs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value).ToEquatableArray();
    }

    // ---- Helpers ----

    private static AttributeData? FindAttribute(ImmutableArray<AttributeData> attributes, string metadataName)
    {
        foreach (var attribute in attributes)
        {
            if (attribute.AttributeClass is { } c && c.ToDisplayString() == metadataName) return attribute;
        }
        return null;
    }

    private static AttributeArgumentSyntax? FindNamedArgument(AttributeSyntax? syntax, string name)
        => syntax?.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);

    /// <summary>The syntax of constructor argument <paramref name="index"/>, positional or named (<c>inFeatures: 512</c>).</summary>
    private static AttributeArgumentSyntax? FindConstructorArgument(AttributeSyntax? syntax, IMethodSymbol constructor, int index)
    {
        if (syntax?.ArgumentList is not { } list || index >= constructor.Parameters.Length) return null;
        var parameterName = constructor.Parameters[index].Name;
        var named = list.Arguments.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == parameterName);
        if (named is not null) return named;
        var positional = 0;
        foreach (var argument in list.Arguments)
        {
            if (argument.NameEquals is not null || argument.NameColon is not null) continue;
            if (positional++ == index) return argument;
        }
        return null;
    }

    private static double ToDouble(object? value, double fallback) => value switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        decimal m => (double)m,
        _ => fallback,
    };

    private static string Text(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
