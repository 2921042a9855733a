using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TetraJet.Generators;

/// <summary>Finding attributes on symbols, and the source of their arguments for diagnostic locations.</summary>
internal static class AttributeSyntaxes
{
    public static bool Is(AttributeData attribute, string metadataName)
        => attribute.AttributeClass is { } c && c.ToDisplayString() == metadataName;

    public static AttributeData? Find(ImmutableArray<AttributeData> attributes, string metadataName)
    {
        foreach (var attribute in attributes)
        {
            if (Is(attribute, metadataName)) return attribute;
        }
        return null;
    }

    public static AttributeSyntax? Syntax(AttributeData attribute, CancellationToken cancellationToken)
        => attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;

    /// <summary>The named argument <paramref name="name"/> (<c>QEma = true</c>) where written, else the whole attribute.</summary>
    public static Location? Where(AttributeData attribute, string? name, CancellationToken cancellationToken)
    {
        var syntax = Syntax(attribute, cancellationToken);
        var argument = name is null ? null : syntax?.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);
        return ((SyntaxNode?)argument ?? syntax)?.GetLocation();
    }

    /// <summary>Constructor argument <paramref name="index"/>, positional or named (<c>inFeatures: 512</c>), else the whole attribute.</summary>
    public static Location? WhereArgument(AttributeData attribute, int index, CancellationToken cancellationToken)
    {
        var syntax = Syntax(attribute, cancellationToken);
        return ((SyntaxNode?)ConstructorArgument(syntax, attribute.AttributeConstructor, index) ?? syntax)?.GetLocation();
    }

    private static AttributeArgumentSyntax? ConstructorArgument(AttributeSyntax? syntax, IMethodSymbol? constructor, int index)
    {
        if (syntax?.ArgumentList is not { } list || constructor is null || index >= constructor.Parameters.Length) return null;
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
}
