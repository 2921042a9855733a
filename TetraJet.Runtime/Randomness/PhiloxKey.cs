using System.Runtime.InteropServices;

namespace TetraJet.Randomness;

/// <summary>
/// The key schedule of Philox4x32-10 for one seed: round r's key is (k0 + r·W0, k1 + r·W1), (k0, k1) the seed's
/// words (<see cref="Philox.Block"/> adds them round by round). Computed once on the host and passed to a kernel as
/// one parameter (PTX keeps a kernel's parameters in the constant bank), where a kernel given the seed added the twenty
/// key words per thread.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct PhiloxKey
{
    const uint W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>Round r's key words: A_r = k0 + r·W0, B_r = k1 + r·W1.</summary>
    public readonly uint A0, B0, A1, B1, A2, B2, A3, B3, A4, B4, A5, B5, A6, B6, A7, B7, A8, B8, A9, B9;

    public PhiloxKey(ulong seed)
    {
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        // Wrapping sums, as in the rounds: r·W is a constant that overflows 32 bits.
        unchecked
        {
            A0 = k0; B0 = k1;
            A1 = k0 + W0; B1 = k1 + W1;
            A2 = k0 + 2 * W0; B2 = k1 + 2 * W1;
            A3 = k0 + 3 * W0; B3 = k1 + 3 * W1;
            A4 = k0 + 4 * W0; B4 = k1 + 4 * W1;
            A5 = k0 + 5 * W0; B5 = k1 + 5 * W1;
            A6 = k0 + 6 * W0; B6 = k1 + 6 * W1;
            A7 = k0 + 7 * W0; B7 = k1 + 7 * W1;
            A8 = k0 + 8 * W0; B8 = k1 + 8 * W1;
            A9 = k0 + 9 * W0; B9 = k1 + 9 * W1;
        }
    }

    /// <summary>The seed this schedule was made from (round 0's key is the seed itself).</summary>
    public ulong Seed => A0 | (ulong)B0 << 32;

    /// <summary>A seed's schedule: host code that held a seed passes it where a kernel takes its key.</summary>
    public static implicit operator PhiloxKey(ulong seed) => new(seed);
}
