using System;
using System.Collections.Generic;
using System.Globalization;
using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

/// <summary>
/// The diagnostics that the analyzer finds in one type, each kept once: the checks run per layer, and layers that
/// inherit their class's attributes meet the same problem at the same place.
/// </summary>
internal sealed class DiagnosticBag
{
    private readonly List<Diagnostic> _diagnostics = new();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    public IReadOnlyList<Diagnostic> Diagnostics => _diagnostics;

    public void Add(DiagnosticDescriptor descriptor, Location? location, params object?[] arguments)
    {
        var diagnostic = Diagnostic.Create(descriptor, location ?? Location.None, arguments);
        var key = diagnostic.Id + "|" + diagnostic.Location.SourceTree?.FilePath + "|" + diagnostic.Location.SourceSpan
            + "|" + diagnostic.GetMessage(CultureInfo.InvariantCulture);
        if (_seen.Add(key)) _diagnostics.Add(diagnostic);
    }
}
