using System.Runtime.InteropServices;
using TetraJet.Quantization.Gpu;
using TetraJet.Randomness;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The kernels' Philox: round keys precomputed on the host (<see cref="PhiloxKey"/>) and the uniforms as ticks, u·2^24
/// (<see cref="KernelMath.Ticks"/>), against the reference <see cref="Philox"/>.
/// </summary>
public class PhiloxKeyTests
{
    [Fact]
    public void Round_keys_are_the_reference_schedule()
    {
        foreach (ulong seed in new[] { 0UL, 1UL, 42UL, 0xFFFFFFFFFFFFFFFFUL, 0x0123456789ABCDEFUL })
        {
            var key = new PhiloxKey(seed);
            uint[] words = MemoryMarshal.Cast<PhiloxKey, uint>(new[] { key }).ToArray();
            Assert.Equal(20, words.Length);
            uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
            for (int r = 0; r < 10; r++)
            {
                Assert.Equal(k0, words[2 * r]);
                Assert.Equal(k1, words[2 * r + 1]);
                unchecked { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
            }
            Assert.Equal(seed, key.Seed);
        }
    }

    [Fact]
    public void Kernel_uniforms_are_the_reference_uniforms_in_ticks()
    {
        var rng = new Random(5);
        for (int t = 0; t < 2000; t++)
        {
            ulong seed = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), stream = (ulong)rng.NextInt64();
            long i = (rng.NextInt64(1L << 40)) & ~3L;
            Vec8 blocks = KernelMath.Uniforms<RoundStochastic>(seed, stream, i, 8, true);
            Vec8 single = KernelMath.Uniforms<RoundStochastic>(seed, stream, i, 8, false);
            float[] a = [blocks.V0, blocks.V1, blocks.V2, blocks.V3, blocks.V4, blocks.V5, blocks.V6, blocks.V7];
            float[] b = [single.V0, single.V1, single.V2, single.V3, single.V4, single.V5, single.V6, single.V7];
            for (int k = 0; k < 8; k++)
            {
                float u = Philox.Uniform(seed, stream, i + k);
                Assert.Equal(u * 16777216f, a[k]);
                Assert.Equal(u * 16777216f, b[k]);
                Assert.True(a[k] == MathF.Floor(a[k]) && a[k] < 16777216f);
            }
        }
    }

    [Fact]
    public void Four_blocks_at_once_are_the_reference_uniforms_of_both_runs()
    {
        var rng = new Random(11);
        for (int t = 0; t < 2000; t++)
        {
            ulong seed = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), stream = (ulong)rng.NextInt64();
            // Runs anywhere (a counter's high word included), the second before, after or beside the first.
            long ia = rng.NextInt64(1L << 40) & ~3L, ib = t % 3 == 0 ? ia + 8 : rng.NextInt64(1L << 40) & ~3L;
            KernelMath.UniformsPair<RoundStochastic>(seed, stream, ia, ib, out Vec8 ua, out Vec8 ub);
            for (int k = 0; k < 8; k++)
            {
                Assert.Equal(Philox.Uniform(seed, stream, ia + k) * 16777216f, ua.Get(k));
                Assert.Equal(Philox.Uniform(seed, stream, ib + k) * 16777216f, ub.Get(k));
            }
        }
        KernelMath.UniformsPair<RoundNearest>(7, 1, 0, 8, out Vec8 na, out Vec8 nb);
        Assert.Equal(0u, na.AbsMax() | nb.AbsMax());
    }

    [Fact]
    public void A_key_argument_holds_the_schedule_as_the_kernel_parameter_lays_it_out()
    {
        var key = new PhiloxKey(0x0123456789ABCDEFUL);
        var arg = KernelArg.Key(key);
        Assert.Equal(80, Marshal.SizeOf<KernelArg>());
        Assert.Equal(80, Marshal.SizeOf<PhiloxKey>());
        Assert.Equal(MemoryMarshal.AsBytes(new[] { key }.AsSpan()).ToArray(), MemoryMarshal.AsBytes(new[] { arg }.AsSpan()).ToArray());
    }
}
