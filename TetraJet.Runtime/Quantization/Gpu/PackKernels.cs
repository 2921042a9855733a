using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Storage form of a quantizer's output along the last axis, on the GPU: one pass that reads the original x (for the
/// scales, as the quantizer computed them) and its dequantized q (for the codes), and one that reads the storage
/// back. Reference: the tensor-operation path of <see cref="DevicePacking"/>, whose bytes these kernels reproduce.
/// Layout as <see cref="QuantKernels.MxLast{TIo, T, TRule, TRound, THad}"/>: one warp per 128 positions of a row,
/// 4 consecutive elements per lane, so a lane writes one 16-bit word of codes.
/// </summary>
public static class PackKernels
{
    /// <summary>
    /// This lane's place (warp per 128 positions, 4 elements a lane) and the amax bits of its 4 elements of x. The
    /// last warp of a row is partly past its end when cols is not a multiple of 128 (MXFP4 allows any multiple of 32):
    /// those lanes are inactive, and since a block never straddles the end, a block's lanes are all in or all out.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Lane<TIo, T>(ArrayView<T> x, int rows, int cols, out int lane, out long i, out uint amax)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        int p = (int)(warp - row * chunks) * 128 + lane * 4;
        i = row * cols + p;
        bool active = row < rows && p < cols;
        var io = default(TIo);
        amax = active ? Max(Max(AbsBits(io.Load(x, i)), AbsBits(io.Load(x, i + 1))), Max(AbsBits(io.Load(x, i + 2)), AbsBits(io.Load(x, i + 3)))) : 0u;
        return active;
    }

    /// <summary>MXFP4 blocks of 32 (8 lanes): E8M0 scale byte per block (0xFF and zero codes for a non-finite block).</summary>
    public static void PackMxLast<TIo, T, TRule>(ArrayView<T> x, ArrayView<T> q, ArrayView<ushort> codes, ArrayView<byte> scales, int rows, int cols)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
    {
        bool active = Lane<TIo, T>(x, rows, cols, out int lane, out long i, out uint m);
        var io = default(TIo);
        m = WarpMax(m, 8);
        if (!active) return;
        byte scale = PackCore.MxScale(m, default(TRule).Rule, out float inverse);
        int word = scale == E8M0.NaN ? 0
            : PackCore.MxCode(io.Load(q, i), inverse) | PackCore.MxCode(io.Load(q, i + 1), inverse) << 4
            | PackCore.MxCode(io.Load(q, i + 2), inverse) << 8 | PackCore.MxCode(io.Load(q, i + 3), inverse) << 12;
        codes[i >> 2] = (ushort)word;
        if ((lane & 7) == 0) scales[i >> 5] = scale;
    }

    /// <summary>TetraJet-v2 NVFP4: E4M3 inner scale byte per 16 (4 lanes), FP32 outer scale per 128 (the warp).</summary>
    public static void PackNvLast<TIo, T>(ArrayView<T> x, ArrayView<T> q, ArrayView<ushort> codes, ArrayView<byte> scales, ArrayView<float> outer,
        int rows, int cols)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        bool active = Lane<TIo, T>(x, rows, cols, out int lane, out long i, out uint inner);
        var io = default(TIo);
        inner = WarpMax(inner, 4);
        uint outerBits = WarpMaxFrom(inner, 4);
        if (!active) return;
        byte scaleCode = PackCore.NvScale(outerBits, inner, out float so, out float scale);
        int word = outerBits >= NonFiniteBits ? 0
            : PackCore.NvCode(io.Load(q, i), scale) | PackCore.NvCode(io.Load(q, i + 1), scale) << 4
            | PackCore.NvCode(io.Load(q, i + 2), scale) << 8 | PackCore.NvCode(io.Load(q, i + 3), scale) << 12;
        codes[i >> 2] = (ushort)word;
        if ((lane & 3) == 0) scales[i >> 4] = scaleCode;
        if (lane == 0) outer[i >> 7] = so;
    }

    /// <summary>MXFP4 storage back to values: code × 2^s, rounded to the element type on store.</summary>
    public static void UnpackMxLast<TIo, T>(ArrayView<ushort> codes, ArrayView<byte> scales, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        int word = codes[t];
        float scale = E8M0.Decode(scales[i >> 5]);
        var io = default(TIo);
        io.Store(y, i, E2M1.Decode(word & 15) * scale);
        io.Store(y, i + 1, E2M1.Decode((word >> 4) & 15) * scale);
        io.Store(y, i + 2, E2M1.Decode((word >> 8) & 15) * scale);
        io.Store(y, i + 3, E2M1.Decode((word >> 12) & 15) * scale);
    }

    /// <summary>NVFP4 storage back to values: code × FP32(s_i·s_o).</summary>
    public static void UnpackNvLast<TIo, T>(ArrayView<ushort> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        int word = codes[t];
        float scale = E4M3.Decode(scales[i >> 4]) * outer[i >> 7];
        var io = default(TIo);
        io.Store(y, i, E2M1.Decode(word & 15) * scale);
        io.Store(y, i + 1, E2M1.Decode((word >> 4) & 15) * scale);
        io.Store(y, i + 2, E2M1.Decode((word >> 8) & 15) * scale);
        io.Store(y, i + 3, E2M1.Decode((word >> 12) & 15) * scale);
    }
}
