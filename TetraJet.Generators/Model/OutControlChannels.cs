namespace TetraJet.Generators;

/// <summary>
/// OutControl's channel count, as the runtime computes it (ALGORITHMS.md §5), so that a layer too narrow for OutControl
/// is an error at compile time rather than a notice at run time.
/// </summary>
internal static class OutControlChannels
{
    private const int Block = 128;

    /// <summary>k = min(⌊K/128⌋·128, ⌈⌊f·K⌋/128⌉·128), with ⌊f·K⌋ in decimal as the runtime takes it.</summary>
    public static int OutlierCount(int k, double fraction)
    {
        var top = (long)decimal.Floor((decimal)fraction * k);
        var rounded = (top + Block - 1) / Block * Block;
        return (int)System.Math.Min((long)k / Block * Block, rounded);
    }

    /// <summary>No outlier channels, or fewer than 128 FP4 channels beside them: the layer would keep plain FP4.</summary>
    public static bool KeepsPlainFp4(int k, double fraction)
    {
        var outliers = OutlierCount(k, fraction);
        return outliers == 0 || k - outliers < Block;
    }

    /// <summary>The smallest multiple of <paramref name="multiple"/> above <paramref name="k"/> that OutControl can split.</summary>
    public static long SmallestWidth(int k, int multiple, double fraction)
    {
        long step = System.Math.Max(1, multiple);
        for (var width = ((long)k / step + 1) * step; width <= int.MaxValue; width += step)
        {
            if (!KeepsPlainFp4((int)width, fraction)) return width;
        }
        return int.MaxValue;
    }
}
