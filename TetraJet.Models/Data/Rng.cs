namespace TetraJet.Models.Data;

/// <summary>
/// SplitMix64: a tiny, portable generator for data order and augmentation. Stateless helpers derive a stream
/// from (seed, a, b) so that any step's batch can be rebuilt without replaying earlier steps (exact resume).
/// </summary>
public struct SplitMix64(ulong state)
{
    ulong state = state;

    public ulong Next()
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)((Next() >> 11) % (ulong)n);

    public static SplitMix64 For(long seed, long a, long b = 0)
    {
        var g = new SplitMix64((ulong)seed);
        ulong s = g.Next() ^ (ulong)a * 0xD1B54A32D192ED03UL;
        g = new SplitMix64(s);
        return new SplitMix64(g.Next() ^ (ulong)b * 0x8CB92BA72F3D8DD7UL);
    }

    /// <summary>A permutation of 0..n-1 (Fisher–Yates).</summary>
    public static int[] Permutation(int n, long seed, long epoch)
    {
        var rng = For(seed, epoch, 0x5EED);
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (p[i], p[j]) = (p[j], p[i]); }
        return p;
    }
}
