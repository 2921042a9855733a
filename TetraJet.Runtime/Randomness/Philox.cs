using System.Runtime.CompilerServices;

namespace TetraJet.Randomness;

/// <summary>
/// Philox4x32-10 (Salmon et al., Random123): the only source of randomness, so that a seed gives the same
/// bits on every path (ALGORITHMS.md §6). Pure integer arithmetic; ILGPU compiles it unchanged.
/// </summary>
public static class Philox
{
    const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>Philox4x32 with 10 rounds. Returns the four output words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1,
        out uint o0, out uint o1, out uint o2, out uint o3)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        }
        o0 = c0; o1 = c1; o2 = c2; o3 = c3;
    }

    /// <summary>
    /// The uniform u_i ∈ [0, 1) of element i (row-major index in the tensor as given) of a quantizer call:
    /// counter (i&gt;&gt;2, i&gt;&gt;34, stream), key = seed, u = (out[i mod 4] &gt;&gt; 8)·2^-24.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Uniform(ulong seed, ulong stream, long i)
    {
        Block((uint)((ulong)i >> 2), (uint)((ulong)i >> 34), (uint)stream, (uint)(stream >> 32), (uint)seed, (uint)(seed >> 32),
            out uint o0, out uint o1, out uint o2, out uint o3);
        int lane = (int)(i & 3);
        uint w = lane == 0 ? o0 : lane == 1 ? o1 : lane == 2 ? o2 : o3;
        return (int)(w >> 8) * (1f / 16777216f);
    }

    /// <summary>The 16 RHT sign bits of a call: out[0] of Philox(counter (0, 0xFFFFFFFF, stream)); bit j set → d_j = −1.</summary>
    public static uint HadamardSigns(ulong seed, ulong stream)
    {
        Block(0, 0xFFFFFFFFu, (uint)stream, (uint)(stream >> 32), (uint)seed, (uint)(seed >> 32), out uint o0, out _, out _, out _);
        return o0 & 0xFFFFu;
    }
}
