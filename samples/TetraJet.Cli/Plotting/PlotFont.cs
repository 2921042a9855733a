using ScottPlot;
using SkiaSharp;

namespace TetraJet.Cli;

/// <summary>
/// The one typeface of every plot: DejaVu Sans, shipped inside this assembly (license beside it), as matplotlib
/// ships it. A system font would do where there is one, but minimal Linux images (the .NET SDK's container among
/// them) have none, and the Skia build without fontconfig would then draw no text at all.
/// </summary>
static class PlotFont
{
    public const string Name = "DejaVu Sans";
    const string Resource = "TetraJet.Cli.Plotting.DejaVuSans.ttf";

    static readonly Lazy<SKData> Data = new(() =>
    {
        using var stream = typeof(PlotFont).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"embedded font {Resource} is missing from the build");
        return SKData.Create(stream);
    });

    static int installed;

    /// <summary>Puts the shipped typeface first among ScottPlot's font resolvers (once per process).</summary>
    public static void Install()
    {
        if (Interlocked.Exchange(ref installed, 1) == 1) return;
        lock (Fonts.FontResolvers) Fonts.FontResolvers.Insert(0, new Resolver());
        Fonts.Default = Name;
    }

    /// <summary>A new typeface from the shipped bytes; ScottPlot disposes the typefaces it asks for.</summary>
    public static SKTypeface Create() => SKTypeface.FromData(Data.Value)
        ?? throw new InvalidOperationException("the embedded font could not be read");

    sealed class Resolver : IFontResolver
    {
        // Every style maps to the one regular face: the plots use size, not weight, for hierarchy.
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => fontName == Name ? Create() : null;

        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) =>
            fontName == Name ? Create() : null;
    }
}
