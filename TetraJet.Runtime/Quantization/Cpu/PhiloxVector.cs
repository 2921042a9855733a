using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// Philox4x32-10 on 8 counters at once (AVX2), giving the uniforms of 32 consecutive elements per call,
/// bit for bit those of <see cref="Philox.Uniform"/>. Falls back to the scalar generator without AVX2.
/// </summary>
internal static unsafe class PhiloxVector
{
    const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>Writes u_i for i = first .. first + count − 1 to <paramref name="dst"/>.</summary>
    public static void Fill(ulong seed, ulong stream, long first, int count, float* dst)
    {
        if (!Avx2.IsSupported)
        {
            for (int k = 0; k < count; k++) dst[k] = Philox.Uniform(seed, stream, first + k);
            return;
        }
        long counter = first >> 2;
        int skip = (int)(first & 3);
        float* tmp = stackalloc float[32];
        int done = 0;
        while (done < count)
        {
            if (skip == 0 && count - done >= 32)
            {
                Uniforms32(seed, stream, counter, dst + done);
                done += 32;
            }
            else
            {
                Uniforms32(seed, stream, counter, tmp);
                int take = Math.Min(32 - skip, count - done);
                new ReadOnlySpan<float>(tmp + skip, take).CopyTo(new Span<float>(dst + done, take));
                done += take;
                skip = 0;
            }
            counter += 8;
        }
    }

    /// <summary>The uniforms of elements 4·counter .. 4·counter + 31, in element order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Uniforms32(ulong seed, ulong stream, long counter, float* dst)
    {
        Vector256<uint> c0, c1;
        if ((uint)counter <= uint.MaxValue - 7)
        {
            c0 = Vector256.Create((uint)counter) + Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7);
            c1 = Vector256.Create((uint)((ulong)counter >> 32));
        }
        else
        {
            // The low word wraps inside this group: carry into the high word lane by lane.
            ulong c = (ulong)counter;
            c0 = Vector256.Create((uint)c, (uint)(c + 1), (uint)(c + 2), (uint)(c + 3), (uint)(c + 4), (uint)(c + 5), (uint)(c + 6), (uint)(c + 7));
            c1 = Vector256.Create((uint)(c >> 32), (uint)((c + 1) >> 32), (uint)((c + 2) >> 32), (uint)((c + 3) >> 32),
                (uint)((c + 4) >> 32), (uint)((c + 5) >> 32), (uint)((c + 6) >> 32), (uint)((c + 7) >> 32));
        }
        var c2 = Vector256.Create((uint)stream);
        var c3 = Vector256.Create((uint)(stream >> 32));
        Block(ref c0, ref c1, ref c2, ref c3, (uint)seed, (uint)(seed >> 32));

        // 4×4 transposes inside each 128-bit half, then swap halves, so that words come out in element order.
        var t0 = Avx2.UnpackLow(c0, c1); var t1 = Avx2.UnpackHigh(c0, c1);
        var t2 = Avx2.UnpackLow(c2, c3); var t3 = Avx2.UnpackHigh(c2, c3);
        var r0 = Avx2.UnpackLow(t0.AsUInt64(), t2.AsUInt64()).AsUInt32();
        var r1 = Avx2.UnpackHigh(t0.AsUInt64(), t2.AsUInt64()).AsUInt32();
        var r2 = Avx2.UnpackLow(t1.AsUInt64(), t3.AsUInt64()).AsUInt32();
        var r3 = Avx2.UnpackHigh(t1.AsUInt64(), t3.AsUInt64()).AsUInt32();
        Store(Avx2.Permute2x128(r0, r1, 0x20), dst);
        Store(Avx2.Permute2x128(r2, r3, 0x20), dst + 8);
        Store(Avx2.Permute2x128(r0, r1, 0x31), dst + 16);
        Store(Avx2.Permute2x128(r2, r3, 0x31), dst + 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(Vector256<uint> w, float* dst) =>
        (Vector256.ConvertToSingle((w >> 8).AsInt32()) * Vector256.Create(1f / 16777216f)).Store(dst);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Block(ref Vector256<uint> c0, ref Vector256<uint> c1, ref Vector256<uint> c2, ref Vector256<uint> c3, uint k0, uint k1)
    {
        var m0 = Vector256.Create(M0);
        var m1 = Vector256.Create(M1);
        var key0 = Vector256.Create(k0);
        var key1 = Vector256.Create(k1);
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { key0 += Vector256.Create(W0); key1 += Vector256.Create(W1); }   // wraps mod 2^32, as the scalar key bump
            MulHiLo(c0, m0, out var hi0, out var lo0);
            MulHiLo(c2, m1, out var hi1, out var lo1);
            var n0 = hi1 ^ c1 ^ key0;
            var n2 = hi0 ^ c3 ^ key1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        }
    }

    /// <summary>32×32→64-bit products of 8 lanes: vpmuludq on the even lanes and on the odd lanes shifted down.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MulHiLo(Vector256<uint> a, Vector256<uint> m, out Vector256<uint> hi, out Vector256<uint> lo)
    {
        var even = Avx2.Multiply(a, m);
        var odd = Avx2.Multiply(Avx2.ShiftRightLogical(a.AsUInt64(), 32).AsUInt32(), m);
        hi = Avx2.Blend(Avx2.ShiftRightLogical(even, 32).AsUInt32(), odd.AsUInt32(), 0b10101010);
        lo = Avx2.MultiplyLow(a, m);   // the low words directly (one vpmulld)
    }
}
