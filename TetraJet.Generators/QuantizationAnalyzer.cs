using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace TetraJet.Generators;

/// <summary>
/// Reports what is wrong with <c>[Linear]</c>, <c>[Quantize]</c> and <c>[QuantizeSlot]</c> declarations, on their source
/// (so <c>#pragma warning</c> and .editorconfig severities apply). It reads them with the generator's own
/// <see cref="Parser"/> and <see cref="ConfigReader"/>; the generator skips what this reports as an error.
/// </summary>
/// <remarks>One symbol action per type: each attribute belongs to exactly one type, so each diagnostic is reported once.</remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class QuantizationAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.ClassNotPartial,
        DiagnosticDescriptors.NotAModule,
        DiagnosticDescriptors.FeaturesNotMultipleOfBlock,
        DiagnosticDescriptors.FeaturesNotPositive,
        DiagnosticDescriptors.EmaDecayOutOfRange,
        DiagnosticDescriptors.OsciResetThresholdOutOfRange,
        DiagnosticDescriptors.OutlierFractionOutOfRange,
        DiagnosticDescriptors.OutControlLeavesTooFewChannels,
        DiagnosticDescriptors.OptionHasNoEffect,
        DiagnosticDescriptors.InvalidLinearProperty,
        DiagnosticDescriptors.SizeMemberNotFound,
        DiagnosticDescriptors.OsciResetLeanFractionOutOfRange,
        DiagnosticDescriptors.QuantizeWithoutLinear,
        DiagnosticDescriptors.FormatNotARecipe,
        DiagnosticDescriptors.HadamardNotPaired,
        DiagnosticDescriptors.NearestInBackward,
        DiagnosticDescriptors.EmaGuidedNotASlotChoice,
        DiagnosticDescriptors.SlotOverriddenTwice,
        DiagnosticDescriptors.SlotOptionHasNoEffect,
        DiagnosticDescriptors.HadamardInForward);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            // Nothing to check in a compilation that cannot see the DSL.
            if (start.Compilation.GetTypeByMetadataName(KnownNames.LinearAttribute) is null) return;
            start.RegisterSymbolAction(AnalyzeType, SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolAnalysisContext context)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        var cancellationToken = context.CancellationToken;
        var diagnostics = new DiagnosticBag();

        // Properties: [Linear] layers, and [Quantize]/[QuantizeSlot] where there is no layer.
        AttributeData? firstLinear = null;
        foreach (var member in type.GetMembers())
        {
            if (member is not IPropertySymbol property) continue;
            var linear = AttributeSyntaxes.Find(property.GetAttributes(), KnownNames.LinearAttribute);
            if (linear is null)
            {
                ReportWithoutLinear(property, "is not a [Linear] property", diagnostics, context);
                continue;
            }
            firstLinear ??= linear;
            if (AttributeSyntaxes.Syntax(linear, cancellationToken)?.Parent?.Parent is PropertyDeclarationSyntax syntax)
            {
                Parser.ParseLinear(syntax, property, linear, context.Compilation, diagnostics, cancellationToken);
            }
        }

        // The class's own attributes, checked even where every layer has its own [Quantize].
        if (firstLinear is null) ReportWithoutLinear(type, "declares no [Linear] properties", diagnostics, context);
        else ConfigReader.CheckClass(type, diagnostics, cancellationToken);

        if (firstLinear is not null && !(type.TypeKind == TypeKind.Class && Parser.DerivesFromModule(type)))
        {
            var declaration = AttributeSyntaxes.Syntax(firstLinear, cancellationToken)?.FirstAncestorOrSelf<TypeDeclarationSyntax>();
            diagnostics.Add(DiagnosticDescriptors.NotAModule, declaration?.Identifier.GetLocation() ?? type.Locations.FirstOrDefault(), type.Name);
        }

        var reason = firstLinear is not null ? "declares [Linear] properties" : NestedLayers(type) is { } nested ? "contains '" + nested + "', which declares [Linear] properties," : null;
        if (reason is not null)
        {
            foreach (var reference in type.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
                {
                    diagnostics.Add(DiagnosticDescriptors.ClassNotPartial, declaration.Identifier.GetLocation(), type.Name, reason);
                }
            }
        }

        foreach (var diagnostic in diagnostics.Diagnostics) context.ReportDiagnostic(diagnostic);
    }

    /// <summary>TJ1014 for each <c>[Quantize]</c>/<c>[QuantizeSlot]</c> on a target without layers; their own checks still run.</summary>
    private static void ReportWithoutLinear(ISymbol target, string why, DiagnosticBag diagnostics, SymbolAnalysisContext context)
    {
        foreach (var attribute in target.GetAttributes())
        {
            string name;
            if (AttributeSyntaxes.Is(attribute, KnownNames.QuantizeAttribute))
            {
                name = "Quantize";
                ConfigReader.ReadQuantize(attribute, diagnostics, context.CancellationToken);
            }
            else if (AttributeSyntaxes.Is(attribute, KnownNames.QuantizeSlotAttribute))
            {
                name = "QuantizeSlot";
            }
            else
            {
                continue;
            }
            diagnostics.Add(DiagnosticDescriptors.QuantizeWithoutLinear, AttributeSyntaxes.Where(attribute, null, context.CancellationToken), name, target.Name, why);
        }
        ConfigReader.ReadSlots(target, diagnostics, context.CancellationToken);
    }

    /// <summary>The first nested type (as <c>Inner.Model</c>) that declares <c>[Linear]</c> properties, or null.</summary>
    private static string? NestedLayers(INamedTypeSymbol type)
    {
        foreach (var nested in type.GetTypeMembers())
        {
            if (nested.GetMembers().OfType<IPropertySymbol>().Any(p => AttributeSyntaxes.Find(p.GetAttributes(), KnownNames.LinearAttribute) is not null))
            {
                return nested.Name;
            }
            if (NestedLayers(nested) is { } deeper) return nested.Name + "." + deeper;
        }
        return null;
    }
}
