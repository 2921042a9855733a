using Microsoft.CodeAnalysis.Text;

namespace TetraJet.Generators.Tests;

/// <summary>Source with one <c>[|...|]</c> span marking where a diagnostic is expected.</summary>
internal sealed record Markup(string Source, TextSpan Span, LinePositionSpan LineSpan)
{
    public static Markup Parse(string marked)
    {
        var start = marked.IndexOf("[|", StringComparison.Ordinal);
        var end = marked.IndexOf("|]", StringComparison.Ordinal);
        if (start < 0 || end < start) throw new ArgumentException("no [|...|] span", nameof(marked));
        var source = marked.Remove(end, 2).Remove(start, 2);
        var span = TextSpan.FromBounds(start, end - 2);
        var text = SourceText.From(source);
        return new Markup(source, span, text.Lines.GetLinePositionSpan(span));
    }
}
