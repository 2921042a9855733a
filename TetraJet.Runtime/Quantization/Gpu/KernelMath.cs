using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;
using TetraJet.Formats;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Kernel-side helpers: warp reductions on |x| bit patterns and the RHT in the two shapes the kernels hold data in.
/// Each mirrors a reference step (see the comments) and is checked against it in the tests.
/// </summary>
public static class KernelMath
{
    /// <summary>The global index of this thread in a 1-D launch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ThreadIndex() => (long)Grid.IdxX * Group.DimX + Group.IdxX;

    /// <summary>
    /// The global index of this thread in 32 bits: launches stay below 2^31 threads (<see cref="KernelGeometry"/>), so
    /// index arithmetic needs no 64-bit division; element offsets are widened where they are formed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ThreadIndex32() => Grid.IdxX * Group.DimX + Group.IdxX;

    /// <summary>Bits of |x|. For finite values their unsigned order is the float order; Inf and NaN sort above every finite value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint AbsBits(float x) => Bits.AsUInt(x) & 0x7FFFFFFFu;

    /// <summary>Smallest |x| bit pattern of a non-finite value: a reduced amax at or above it marks the block NaN.</summary>
    public const uint NonFiniteBits = 0x7F800000u;

    // Math.Max and Math.Min: one max/min instruction on the GPU, where a conditional expression is a compare and a select.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Max(uint a, uint b) => Math.Max(a, b);

    /// <summary>Max over aligned groups of <paramref name="width"/> lanes (a power of two ≤ 32) by butterfly shuffles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WarpMax(uint v, int width) => WarpMax(v, 1, width);

    /// <summary>Sum over the 32 lanes of a warp (every lane gets it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int WarpSum(int v)
    {
        v += Warp.ShuffleXor(v, 1);
        v += Warp.ShuffleXor(v, 2);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 16);
        return v;
    }

    /// <summary>Max over aligned groups of <paramref name="width"/> lanes, continuing from groups of <paramref name="from"/> lanes that already agree.</summary>
    /// <remarks>Written out step by step: ILGPU does not unroll loops, and with constant widths the untaken steps fold away.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WarpMax(uint v, int from, int width)
    {
        if (from <= 1 && width > 1) v = Max(v, Warp.ShuffleXor(v, 1));
        if (from <= 2 && width > 2) v = Max(v, Warp.ShuffleXor(v, 2));
        if (from <= 4 && width > 4) v = Max(v, Warp.ShuffleXor(v, 4));
        if (from <= 8 && width > 8) v = Max(v, Warp.ShuffleXor(v, 8));
        if (from <= 16 && width > 16) v = Max(v, Warp.ShuffleXor(v, 16));
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Max(int a, int b) => Math.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Min(int a, int b) => Math.Min(a, b);

    /// <summary>Max and min of an int over aligned groups of <paramref name="width"/> lanes, from groups of <paramref name="from"/> that already agree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WarpMaxMin(ref int max, ref int min, int from, int width)
    {
        for (int m = from; m < width; m <<= 1)
        {
            max = Max(max, Warp.ShuffleXor(max, m));
            min = Min(min, Warp.ShuffleXor(min, m));
        }
    }

    /// <summary>
    /// The SR uniforms of elements [i, i + 8) (ALGORITHMS.md §6) as ticks, u·2^24 (integers below 2^24: the rounding
    /// steps scale the step by 2^-24 instead, see <see cref="Ticks"/>). With <paramref name="blocks"/> (i a multiple of
    /// 4, the eight indices consecutive) two Philox blocks give all eight, as the counter i &gt;&gt; 2 is shared by four
    /// elements; otherwise one block per element for the first <paramref name="n"/>. Zeros when the mode is not SR.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Uniforms<TRound>(PhiloxKey key, ulong stream, long i, int n, bool blocks) where TRound : struct, IRoundingMode
    {
        Vec8 u = default;
        if (default(TRound).Mode != Rounding.Stochastic) return u;
        if (blocks)
        {
            ulong c = (ulong)i >> 2;
            PhiloxPair((uint)c, (uint)(c >> 32), (uint)(c + 1), (uint)((c + 1) >> 32), (uint)stream, (uint)(stream >> 32), key, ref u);
            return u;
        }
        if (n > 0) u.V0 = Tick(key, stream, i);
        if (n > 1) u.V1 = Tick(key, stream, i + 1);
        if (n > 2) u.V2 = Tick(key, stream, i + 2);
        if (n > 3) u.V3 = Tick(key, stream, i + 3);
        if (n > 4) u.V4 = Tick(key, stream, i + 4);
        if (n > 5) u.V5 = Tick(key, stream, i + 5);
        if (n > 6) u.V6 = Tick(key, stream, i + 6);
        if (n > 7) u.V7 = Tick(key, stream, i + 7);
        return u;
    }

    /// <summary>
    /// The uniforms of two runs of 8 at <paramref name="ia"/> and <paramref name="ib"/> (each a multiple of 4, on the
    /// block path of <see cref="Uniforms{TRound}"/>): the same values as two calls, from four Philox blocks computed
    /// together, so that each round key is loaded once for four blocks rather than for two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UniformsPair<TRound>(PhiloxKey key, ulong stream, long ia, long ib, out Vec8 ua, out Vec8 ub) where TRound : struct, IRoundingMode
    {
        ua = default;
        ub = default;
        if (default(TRound).Mode != Rounding.Stochastic) return;
        ulong ca = (ulong)ia >> 2, cb = (ulong)ib >> 2;
        PhiloxQuad((uint)ca, (uint)(ca >> 32), (uint)(ca + 1), (uint)((ca + 1) >> 32),
            (uint)cb, (uint)(cb >> 32), (uint)(cb + 1), (uint)((cb + 1) >> 32), (uint)stream, (uint)(stream >> 32), key, ref ua, ref ub);
    }

    /// <summary>Element i's uniform as ticks, u·2^24 (exact: u is a multiple of 2^-24), from the reference's Philox.Uniform.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tick(PhiloxKey key, ulong stream, long i) => Randomness.Philox.Uniform(key.Seed, stream, i) * TicksPerUnit;

    /// <summary>2^24: the ticks of a uniform of 1.</summary>
    public const float TicksPerUnit = 16777216f;

    const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;

    /// <summary>One Philox4x32 round on a block, with the round's key (reference: Randomness.Philox.Block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Round(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        Wide(c0, M0, out uint lo0, out uint hi0);
        Wide(c2, M1, out uint lo1, out uint hi1);
        uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1; c3 = lo0; c0 = n0; c2 = n2;
    }

    /// <summary>The 64-bit product of two 32-bit words as its low and high words.</summary>
    /// <remarks>
    /// On CUDA as mul.lo and mul.hi in inline PTX, which ptxas fuses into one wide multiply: ILGPU writes
    /// <c>(ulong)a * b</c> as a 64-bit multiply of zero-extended words, and ptxas then adds the (zero) product of the
    /// high words to the result, one wasted instruction per multiply, 40 per Philox block pair (ptxas 11.8 and 12.8).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Wide(uint a, uint b, out uint lo, out uint hi)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> l = default, h = default;
            Input<uint> x = a, y = b;
            CudaAsm.EmitRef("mul.lo.u32 %0, %2, %3;\n\tmul.hi.u32 %1, %2, %3;", ref l, ref h, ref x, ref y);
            lo = l.Value;
            hi = h.Value;
        }
        else
        {
            ulong p = (ulong)a * b;
            lo = (uint)p;
            hi = (uint)(p >> 32);
        }
    }

    /// <summary>A round of two blocks at once (independent chains: the multiplies of one hide the other's latency).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Round2(ref uint a0, ref uint a1, ref uint a2, ref uint a3, ref uint b0, ref uint b1, ref uint b2, ref uint b3, uint k0, uint k1)
    {
        Round(ref a0, ref a1, ref a2, ref a3, k0, k1);
        Round(ref b0, ref b1, ref b2, ref b3, k0, k1);
    }

    /// <summary>
    /// Philox4x32-10 of the two consecutive counters (ca0, ca1, s0, s1) and (cb0, cb1, s0, s1) under
    /// <paramref name="key"/>'s round keys, as the ticks of 8 elements: the rounds written out (ILGPU does not unroll
    /// loops). Same words as Randomness.Philox.Block; the SR kernels are checked against the reference bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PhiloxPair(uint ca0, uint ca1, uint cb0, uint cb1, uint s0, uint s1, PhiloxKey key, ref Vec8 u)
    {
        uint a0 = ca0, a1 = ca1, a2 = s0, a3 = s1, b0 = cb0, b1 = cb1, b2 = s0, b3 = s1;
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A0, key.B0);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A1, key.B1);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A2, key.B2);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A3, key.B3);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A4, key.B4);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A5, key.B5);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A6, key.B6);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A7, key.B7);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A8, key.B8);
        Round2(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, key.A9, key.B9);
        u.V0 = Ticks(a0); u.V1 = Ticks(a1); u.V2 = Ticks(a2); u.V3 = Ticks(a3);
        u.V4 = Ticks(b0); u.V5 = Ticks(b1); u.V6 = Ticks(b2); u.V7 = Ticks(b3);
    }

    /// <summary>A round of four blocks (two <see cref="Round2"/>: each key word loaded once for the four).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Round4(ref Block4 a, ref Block4 b, ref Block4 c, ref Block4 d, uint k0, uint k1)
    {
        Round2(ref a.W0, ref a.W1, ref a.W2, ref a.W3, ref b.W0, ref b.W1, ref b.W2, ref b.W3, k0, k1);
        Round2(ref c.W0, ref c.W1, ref c.W2, ref c.W3, ref d.W0, ref d.W1, ref d.W2, ref d.W3, k0, k1);
    }

    /// <summary>A Philox4x32 block's four words.</summary>
    struct Block4
    {
        public uint W0, W1, W2, W3;
    }

    /// <summary>
    /// <see cref="PhiloxPair"/> for two pairs of counters at once, (ca, cb) as the ticks of <paramref name="u"/> and
    /// (cc, cd) as those of <paramref name="v"/>: the same words, four independent chains per round.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PhiloxQuad(uint ca0, uint ca1, uint cb0, uint cb1, uint cc0, uint cc1, uint cd0, uint cd1, uint s0, uint s1, PhiloxKey key,
        ref Vec8 u, ref Vec8 v)
    {
        Block4 a = new() { W0 = ca0, W1 = ca1, W2 = s0, W3 = s1 }, b = new() { W0 = cb0, W1 = cb1, W2 = s0, W3 = s1 };
        Block4 c = new() { W0 = cc0, W1 = cc1, W2 = s0, W3 = s1 }, d = new() { W0 = cd0, W1 = cd1, W2 = s0, W3 = s1 };
        Round4(ref a, ref b, ref c, ref d, key.A0, key.B0);
        Round4(ref a, ref b, ref c, ref d, key.A1, key.B1);
        Round4(ref a, ref b, ref c, ref d, key.A2, key.B2);
        Round4(ref a, ref b, ref c, ref d, key.A3, key.B3);
        Round4(ref a, ref b, ref c, ref d, key.A4, key.B4);
        Round4(ref a, ref b, ref c, ref d, key.A5, key.B5);
        Round4(ref a, ref b, ref c, ref d, key.A6, key.B6);
        Round4(ref a, ref b, ref c, ref d, key.A7, key.B7);
        Round4(ref a, ref b, ref c, ref d, key.A8, key.B8);
        Round4(ref a, ref b, ref c, ref d, key.A9, key.B9);
        u.V0 = Ticks(a.W0); u.V1 = Ticks(a.W1); u.V2 = Ticks(a.W2); u.V3 = Ticks(a.W3);
        u.V4 = Ticks(b.W0); u.V5 = Ticks(b.W1); u.V6 = Ticks(b.W2); u.V7 = Ticks(b.W3);
        v.V0 = Ticks(c.W0); v.V1 = Ticks(c.W1); v.V2 = Ticks(c.W2); v.V3 = Ticks(c.W3);
        v.V4 = Ticks(d.W0); v.V5 = Ticks(d.W1); v.V6 = Ticks(d.W2); v.V7 = Ticks(d.W3);
    }

    /// <summary>
    /// A Philox output word as ticks: w &gt;&gt; 8, the uniform (w &gt;&gt; 8)·2^-24 of ALGORITHMS.md §6 times 2^24. The
    /// rounding steps take the 2^-24 into the step they multiply by (a power of two, so the product is the same exact
    /// value), which spares a multiply per element.
    /// </summary>
    /// <remarks>
    /// Converted as a signed integer (w &gt;&gt; 8 &lt; 2^24, so exact either way): ILGPU converts an unsigned integer to
    /// float through double, two FP64-class conversions per element where this is one. The shift is the high word of
    /// w·2^24 (<see cref="Wide"/>: <c>mul.hi</c> on CUDA, whose unused low word ptxas drops), which ptxas keeps as an
    /// integer multiply on the FMA pipe, where a shift would take the ALU pipe that the Philox rounds' XORs load.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Ticks(uint w)
    {
        Wide(w, 1u << 24, out _, out uint high);
        return (int)high;
    }

    /// <summary>Max of a value's bits in the group of lanes [<paramref name="from"/>, 32) strides, i.e. continues a reduction from width <paramref name="from"/> to 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WarpMaxFrom(uint v, int from) => WarpMax(v, from, 32);

    /// <summary>
    /// The 16-point RHT (Hadamard.Transform16) when 16 consecutive elements are spread over 4 lanes, 4 each:
    /// strides 1 and 2 are inside a lane, strides 4 and 8 pair lanes 1 and 2 apart. Same FP32 operations in the
    /// same stages as the reference, so the same bits. <paramref name="quad"/> = lane mod 4.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Hadamard4Lanes(ref float v0, ref float v1, ref float v2, ref float v3, int quad, uint signs)
    {
        int j0 = quad * 4;
        if (((signs >> j0) & 1) != 0) v0 = -v0;
        if (((signs >> (j0 + 1)) & 1) != 0) v1 = -v1;
        if (((signs >> (j0 + 2)) & 1) != 0) v2 = -v2;
        if (((signs >> (j0 + 3)) & 1) != 0) v3 = -v3;
        // h = 1: pairs (0,1), (2,3) in the lane.
        float a = v0, b = v1; v0 = a + b; v1 = a - b;
        a = v2; b = v3; v2 = a + b; v3 = a - b;
        // h = 2: pairs (0,2), (1,3) in the lane.
        a = v0; b = v2; v0 = a + b; v2 = a - b;
        a = v1; b = v3; v1 = a + b; v3 = a - b;
        // h = 4 and 8: the lower lane of a pair keeps a + b, the upper keeps a − b (a = lower's value).
        ButterflyAcrossLanes(ref v0, ref v1, ref v2, ref v3, 1, (quad & 1) == 0);
        ButterflyAcrossLanes(ref v0, ref v1, ref v2, ref v3, 2, (quad & 2) == 0);
        v0 *= 0.25f; v1 *= 0.25f; v2 *= 0.25f; v3 *= 0.25f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ButterflyAcrossLanes(ref float v0, ref float v1, ref float v2, ref float v3, int mask, bool lower)
    {
        float o0 = Warp.ShuffleXor(v0, mask), o1 = Warp.ShuffleXor(v1, mask);
        float o2 = Warp.ShuffleXor(v2, mask), o3 = Warp.ShuffleXor(v3, mask);
        v0 = lower ? v0 + o0 : o0 - v0;
        v1 = lower ? v1 + o1 : o1 - v1;
        v2 = lower ? v2 + o2 : o2 - v2;
        v3 = lower ? v3 + o3 : o3 - v3;
    }

    /// <summary>
    /// The 16-point RHT when 16 consecutive elements sit one per lane in aligned groups of 16 lanes
    /// (<paramref name="j"/> = lane mod 16): each stride h is a shuffle, the lower lane of a pair keeping a + b and
    /// the upper a − b, as in Hadamard.Transform16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Hadamard16Lanes(float v, int j, uint signs)
    {
        if (((signs >> j) & 1) != 0) v = -v;
        for (int h = 1; h < 16; h <<= 1)
        {
            float o = Warp.ShuffleXor(v, h);
            v = (j & h) == 0 ? v + o : o - v;
        }
        return v * 0.25f;
    }

    /// <summary>Signs and the strides 1, 2, 4 of the RHT on eight consecutive elements j0 … j0 + 7 of a 16-group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 Butterflies124(Vec8 v, int j0, uint signs)
    {
        uint d = signs >> j0;
        SignedPair(ref v.V0, ref v.V1, d, 0);
        SignedPair(ref v.V2, ref v.V3, d, 2);
        SignedPair(ref v.V4, ref v.V5, d, 4);
        SignedPair(ref v.V6, ref v.V7, d, 6);
        float a, b;
        a = v.V0; b = v.V2; v.V0 = a + b; v.V2 = a - b;
        a = v.V1; b = v.V3; v.V1 = a + b; v.V3 = a - b;
        a = v.V4; b = v.V6; v.V4 = a + b; v.V6 = a - b;
        a = v.V5; b = v.V7; v.V5 = a + b; v.V7 = a - b;
        a = v.V0; b = v.V4; v.V0 = a + b; v.V4 = a - b;
        a = v.V1; b = v.V5; v.V1 = a + b; v.V5 = a - b;
        a = v.V2; b = v.V6; v.V2 = a + b; v.V6 = a - b;
        a = v.V3; b = v.V7; v.V3 = a + b; v.V7 = a - b;
        return v;
    }

    /// <summary>
    /// The signs (d_j = −1 negates element j) and the stride-1 butterfly of elements k, k + 1: x = d_k·v_k, then
    /// x ± d_(k+1)·v_(k+1) as one FMA each. The products by ±1 are exact, so each FMA rounds once to the bits of the
    /// reference's negations and two additions (signed zeros included; a NaN stays a NaN). Three FP32 operations where the sign-bit
    /// XORs and the additions took four, two of them on the integer pipe that the Philox rounds already keep busy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void SignedPair(ref float a, ref float b, uint d, int k)
    {
        float sa = Sign(d >> k), sb = Sign(d >> (k + 1));
        float x = a * sa;
        float y = b;
        a = ExactProductFma(y, sb, x);
        b = ExactProductFma(y, -sb, x);
    }

    /// <summary>±1 from bit 0 of <paramref name="bit"/> (set: −1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Sign(uint bit) => Bits.AsFloat(0x3F800000u | (bit & 1u) << 31);

    /// <summary>a·b + c for an exact a·b (b = ±1): <c>fma.rn</c> on CUDA, the product then the sum elsewhere (the same value).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ExactProductFma(float a, float b, float c) => CudaAsm.IsSupported ? default(PtxFma).Fma(a, b, c) : a * b + c;

    /// <summary>
    /// The 16-point RHT (Hadamard.Transform16) when 16 consecutive elements are held by 2 lanes, 8 each: strides 1, 2, 4
    /// inside a lane, stride 8 between the lanes of a pair (the lower keeps a + b, the upper a − b). Same FP32 operations
    /// in the same stages as the reference. <paramref name="upper"/>: this lane holds elements 8 … 15.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Hadamard2Lanes(Vec8 v, bool upper, uint signs)
    {
        v = Butterflies124(v, upper ? 8 : 0, signs);
        v.V0 = Across(v.V0, upper); v.V1 = Across(v.V1, upper); v.V2 = Across(v.V2, upper); v.V3 = Across(v.V3, upper);
        v.V4 = Across(v.V4, upper); v.V5 = Across(v.V5, upper); v.V6 = Across(v.V6, upper); v.V7 = Across(v.V7, upper);
        return v.Times(0.25f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Across(float v, bool upper)
    {
        float o = Warp.ShuffleXor(v, 1);
        return upper ? o - v : v + o;
    }

    /// <summary>The 16-point RHT of 16 consecutive elements held by one thread as two halves (registers, no shuffles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Hadamard16(ref Vec8 lo, ref Vec8 hi, uint signs)
    {
        Hadamard16Unscaled(ref lo, ref hi, signs);
        lo = lo.Times(0.25f);
        hi = hi.Times(0.25f);
    }

    /// <summary>
    /// <see cref="Hadamard16(ref Vec8, ref Vec8, uint)"/> before its final 1/4 (the sums h, of which the RHT is RN(h·0.25)):
    /// for kernels that fold the 1/4 into what follows (<see cref="BlockMath.NvGridPair{TRound, THad}"/>, <see cref="Quarter"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Hadamard16Unscaled(ref Vec8 lo, ref Vec8 hi, uint signs)
    {
        lo = Butterflies124(lo, 0, signs);
        hi = Butterflies124(hi, 8, signs);
        float a, b;
        a = lo.V0; b = hi.V0; lo.V0 = a + b; hi.V0 = a - b;
        a = lo.V1; b = hi.V1; lo.V1 = a + b; hi.V1 = a - b;
        a = lo.V2; b = hi.V2; lo.V2 = a + b; hi.V2 = a - b;
        a = lo.V3; b = hi.V3; lo.V3 = a + b; hi.V3 = a - b;
        a = lo.V4; b = hi.V4; lo.V4 = a + b; hi.V4 = a - b;
        a = lo.V5; b = hi.V5; lo.V5 = a + b; hi.V5 = a - b;
        a = lo.V6; b = hi.V6; lo.V6 = a + b; hi.V6 = a - b;
        a = lo.V7; b = hi.V7; lo.V7 = a + b; hi.V7 = a - b;
    }

    /// <summary>
    /// The |x| bits of RN(m·0.25) for |x| bits <paramref name="m"/>: the amax of a block of RHT outputs from the amax of
    /// its unscaled sums (<see cref="Hadamard16Unscaled"/>), since rounding is monotonic (the largest rounded quarter is
    /// the rounded quarter of the largest); a NaN stays at or above <see cref="NonFiniteBits"/>. One multiply a block
    /// where scaling every element took one each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Quarter(uint m) => Bits.AsUInt(Bits.AsFloat(m) * 0.25f);

    /// <summary>Hadamard.Transform16 over a 16-element view (local memory in kernels); Span is not available to ILGPU.</summary>
    public static void Hadamard16(ArrayView<float> x, uint signs)
    {
        for (int j = 0; j < 16; j++)
            if (((signs >> j) & 1) != 0) x[j] = -x[j];
        for (int h = 1; h < 16; h <<= 1)
            for (int j = 0; j < 16; j++)
                if ((j & h) == 0)
                {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
        for (int j = 0; j < 16; j++) x[j] *= 0.25f;
    }
}
