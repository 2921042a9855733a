using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace TetraJet.Generators;

/// <summary>
/// Warns about a constructor of a class with <c>[Linear]</c> properties that never calls <c>InitializeQuantization</c>
/// (either overload) and does not chain to another constructor with <c>this(...)</c>: its layers would stay null.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class InitializationAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; }
        = ImmutableArray.Create(DiagnosticDescriptors.ConstructorSkipsInitialization);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSyntaxNodeAction(AnalyzeConstructor, SyntaxKind.ConstructorDeclaration);
    }

    private static void AnalyzeConstructor(SyntaxNodeAnalysisContext context)
    {
        var constructor = (ConstructorDeclarationSyntax)context.Node;
        if (constructor.Modifiers.Any(SyntaxKind.StaticKeyword)) return;
        if (constructor.Initializer is { } initializer && initializer.IsKind(SyntaxKind.ThisConstructorInitializer)) return;
        if (context.SemanticModel.GetDeclaredSymbol(constructor, context.CancellationToken) is not { ContainingType: { } type }) return;
        if (!HasLinearProperties(type)) return;

        var calls = constructor.DescendantNodes().OfType<InvocationExpressionSyntax>().Any(invocation => invocation.Expression switch
        {
            IdentifierNameSyntax name => name.Identifier.ValueText == KnownNames.InitializeQuantization,
            MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } access => access.Name.Identifier.ValueText == KnownNames.InitializeQuantization,
            _ => false,
        });
        if (calls) return;

        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.ConstructorSkipsInitialization, constructor.Identifier.GetLocation(), type.Name));
    }

    private static bool HasLinearProperties(INamedTypeSymbol type)
    {
        foreach (var member in type.GetMembers())
        {
            if (member is not IPropertySymbol property) continue;
            foreach (var attribute in property.GetAttributes())
            {
                if (attribute.AttributeClass?.ToDisplayString() == KnownNames.LinearAttribute) return true;
            }
        }
        return false;
    }
}
