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
/// half-typed code: whatever cannot be read is left out (the compiler reports it) or, when the analyzer asks, becomes a
/// diagnostic.
/// </summary>
internal static class Parser
{
    private const string InFeatures = "inFeatures";
    private const string OutFeatures = "outFeatures";

    // ---- [Linear] properties ----

    /// <summary>The generator's entry: a <c>[Linear]</c> property as a spec, without diagnostics.</summary>
    public static LinearPropertySpec? ParseLinearProperty(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetNode is not PropertyDeclarationSyntax property || context.TargetSymbol is not IPropertySymbol symbol) return null;
        if (context.Attributes.IsEmpty) return null;
        return ParseLinear(property, symbol, context.Attributes[0], context.SemanticModel.Compilation, null, cancellationToken);
    }

    /// <summary>
    /// A <c>[Linear]</c> property as a spec. With <paramref name="diagnostics"/> (the analyzer) it also reports what is
    /// wrong with it; the spec then marks what cannot be built, and the generator skips it.
    /// </summary>
    public static LinearPropertySpec? ParseLinear(
        PropertyDeclarationSyntax property, IPropertySymbol symbol, AttributeData attribute, Compilation compilation,
        DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        if (symbol.ContainingType is not { } type || property.Parent is not TypeDeclarationSyntax typeSyntax) return null;

        var classSpec = ParseClass(type, typeSyntax);
        var name = symbol.Name;

        // Shape: the generator can implement only 'partial QLinear Name { get; }'.
        var problem = ShapeProblem(property, symbol);
        if (problem is not null)
        {
            diagnostics?.Add(DiagnosticDescriptors.InvalidLinearProperty, property.Identifier.GetLocation(), name, problem);
        }

        var layer = ConfigReader.ReadLayer(symbol, type, diagnostics, cancellationToken);
        var config = layer.Config;

        var invalid = new SizeSpec(null, null, null);
        SizeSpec inSize = invalid, outSize = invalid;
        var bias = true;
        var constructor = attribute.AttributeConstructor;
        if (constructor is not null && attribute.ConstructorArguments.Length == constructor.Parameters.Length && constructor.Parameters.Length >= 2)
        {
            inSize = ParseSize(attribute, 0, InFeatures, name, type, compilation, config, diagnostics, cancellationToken);
            outSize = ParseSize(attribute, 1, OutFeatures, name, type, compilation, config, diagnostics, cancellationToken);
            if (attribute.ConstructorArguments.Length >= 3 && attribute.ConstructorArguments[2].Value is bool b) bias = b;
        }

        var modifiers = string.Join(" ", property.Modifiers.Select(m => m.Text));
        var nullable = symbol.Type.NullableAnnotation == NullableAnnotation.Annotated;
        return new LinearPropertySpec(
            classSpec, name, modifiers, nullable, problem is null, inSize, outSize, bias, config, layer.HasOwnQuantize,
            layer.Overrides, property.SyntaxTree.FilePath, OrderOf(property));
    }

    /// <summary>Member indices from the compilation unit down to <paramref name="node"/>: stable under edits to trivia.</summary>
    private static EquatableArray<int> OrderOf(SyntaxNode node)
    {
        var path = new List<int>();
        for (var current = node; current.Parent is { } parent; current = parent)
        {
            var members = parent switch
            {
                TypeDeclarationSyntax t => t.Members,
                BaseNamespaceDeclarationSyntax n => n.Members,
                CompilationUnitSyntax u => u.Members,
                _ => default(SyntaxList<MemberDeclarationSyntax>?),
            };
            if (members is { } list && current is MemberDeclarationSyntax member) path.Insert(0, list.IndexOf(member));
        }
        return path.ToEquatableArray();
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
        AttributeData attribute, int index, string parameter, string layer, INamedTypeSymbol type, Compilation compilation,
        ConfigSpec? config, DiagnosticBag? diagnostics, CancellationToken cancellationToken)
    {
        var invalid = new SizeSpec(null, null, null);
        var argument = attribute.ConstructorArguments[index];
        Location? Where() => AttributeSyntaxes.WhereArgument(attribute, index, cancellationToken);
        switch (argument.Value)
        {
            case int value:
                if (value <= 0)
                {
                    diagnostics?.Add(DiagnosticDescriptors.FeaturesNotPositive, Where(), parameter, Text(value), layer);
                    return invalid;
                }
                var multiple = config?.FeatureMultiple ?? 1;
                if (value % multiple == 0)
                {
                    // OutControl needs 128 FP4 channels beside its outliers (multiples of 128), else the layer keeps plain FP4.
                    if (parameter == InFeatures && config is { OutControl: true } && config.Slots[0].IsQuantized
                        && OutControlChannels.KeepsPlainFp4(value, config.OutlierFraction))
                    {
                        var outliers = OutControlChannels.OutlierCount(value, config.OutlierFraction);
                        diagnostics?.Add(DiagnosticDescriptors.OutControlLeavesTooFewChannels, Where(), layer, Text(value), ConfigSpec.Literal(config.OutlierFraction),
                            Text(outliers), Text(value - outliers),
                            OutControlChannels.SmallestWidth(value, multiple, config.OutlierFraction).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    }
                    return new SizeSpec(value, null, Text(value));
                }
                if (diagnostics is not null)
                {
                    var suggestion = ((long)value / multiple + 1) * multiple;   // long: no overflow near int.MaxValue
                    var slot = config!.BindingSlot;
                    var block = config.Slots[slot].BlockDescription
                        + (config.IsOverridden(slot) ? ", set by [QuantizeSlot] over recipe " : ", recipe ") + config.Recipe;
                    diagnostics.Add(
                        DiagnosticDescriptors.FeaturesNotMultipleOfBlock, Where(), parameter, Text(value), layer, Text(multiple),
                        SlotSpec.Names[slot], block, suggestion.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
                return new SizeSpec(value, null, Text(value), Fits: false);

            case string member:
                var found = FindIntMember(type, member, compilation);
                if (found is null)
                {
                    diagnostics?.Add(DiagnosticDescriptors.SizeMemberNotFound, Where(), parameter, layer, member, type.Name);
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
                Keyword(declaration), name + typeParameters, name, declaration.Modifiers.Any(SyntaxKind.PartialKeyword)));
        }

        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : null;
        var fullName = string.Join(".", symbols.Select(s => s.MetadataName));
        if (ns is not null) fullName = ns + "." + fullName;
        var runtimeRecipe = typeSyntax.DescendantNodes().OfType<InvocationExpressionSyntax>().Any(invocation =>
            invocation.ArgumentList.Arguments.Count == 1 && invocation.Expression switch
            {
                IdentifierNameSyntax name => name.Identifier.ValueText == KnownNames.InitializeQuantization,
                MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } access => access.Name.Identifier.ValueText == KnownNames.InitializeQuantization,
                _ => false,
            });
        return new ClassSpec(ns, declarations.ToEquatableArray(), fullName, type.TypeKind == TypeKind.Class, DerivesFromModule(type), runtimeRecipe);
    }

    private static string Keyword(TypeDeclarationSyntax declaration) => declaration switch
    {
        RecordDeclarationSyntax record => record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) ? "record struct" : "record",
        StructDeclarationSyntax => "struct",
        InterfaceDeclarationSyntax => "interface",
        _ => "class",
    };

    /// <summary>True when a base type is <c>TorchSharp.torch.nn.Module</c> (or one of its generic forms).</summary>
    public static bool DerivesFromModule(INamedTypeSymbol type)
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
        foreach (var property in properties)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!groups.TryGetValue(property.Class.FullName, out var list))
            {
                groups[property.Class.FullName] = list = new List<LinearPropertySpec>();
            }
            list.Add(property);
        }

        var models = new List<ModelSpec>();
        foreach (var key in groups.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var layers = groups[key]
                .OrderBy(p => p.FilePath, StringComparer.Ordinal).ThenBy(p => p.Order, OrderComparer.Instance)
                .ToList();
            models.Add(new ModelSpec(layers[0].Class, layers.ToEquatableArray()));
        }
        return models.ToEquatableArray();
    }

    /// <summary>Lexicographic order of member-index paths.</summary>
    private sealed class OrderComparer : IComparer<EquatableArray<int>>
    {
        public static readonly OrderComparer Instance = new();

        public int Compare(EquatableArray<int> x, EquatableArray<int> y)
        {
            for (var i = 0; i < x.Count && i < y.Count; i++)
            {
                if (x[i] != y[i]) return x[i].CompareTo(y[i]);
            }
            return x.Count.CompareTo(y.Count);
        }
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

    /// <summary>
    /// The plans generated code constructs or can select at run time, in a stable order: each declared configuration's,
    /// and the named recipes' (with their dataflow options) when a model chooses its recipe at run time.
    /// </summary>
    public static EquatableArray<PlanSpec> CollectPlans(EquatableArray<ModelSpec> models)
    {
        var plans = new Dictionary<string, PlanSpec>(StringComparer.Ordinal);
        var runtime = false;
        foreach (var model in models)
        {
            if (!model.CanEmit) continue;
            runtime |= model.Class.UsesRuntimeRecipe;
            foreach (var layer in model.Layers)
            {
                if (!layer.CanConstruct || layer.Config is not { } config) continue;
                var plan = PlanSpec.From(config);
                if (!plans.ContainsKey(plan.Name)) plans[plan.Name] = plan;
            }
        }
        if (runtime)
            foreach (var plan in PlanSpec.NamedRecipes())
                if (!plans.ContainsKey(plan.Name)) plans[plan.Name] = plan;
        return plans.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value).ToEquatableArray();
    }

    // ---- Helpers ----

    private static string Text(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
