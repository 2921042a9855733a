using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;

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

    /// <summary>Bits of |x|. For finite values their unsigned order is the float order; Inf and NaN sort above every finite value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint AbsBits(float x) => Bits.AsUInt(x) & 0x7FFFFFFFu;

    /// <summary>Smallest |x| bit pattern of a non-finite value: a reduced amax at or above it marks the block NaN.</summary>
    public const uint NonFiniteBits = 0x7F800000u;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Max(uint a, uint b) => a > b ? a : b;

    /// <summary>Max over aligned groups of <paramref name="width"/> lanes (a power of two ≤ 32) by butterfly shuffles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WarpMax(uint v, int width)
    {
        for (int m = 1; m < width; m <<= 1) v = Max(v, Warp.ShuffleXor(v, m));
        return v;
    }

    /// <summary>Max of a value's bits in the group of lanes [<paramref name="from"/>, 32) strides, i.e. continues a reduction from width <paramref name="from"/> to 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WarpMaxFrom(uint v, int from)
    {
        for (int m = from; m < 32; m <<= 1) v = Max(v, Warp.ShuffleXor(v, m));
        return v;
    }

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
