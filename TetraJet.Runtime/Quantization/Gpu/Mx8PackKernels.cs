using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// MXFP8 storage form along the last axis on the GPU (OutControl's outlier channels): E4M3 codes one byte per element,
/// one E8M0 scale byte per 32. Reference: the tensor-operation path of <see cref="DevicePacking"/>, whose bytes these
/// kernels reproduce. Layout as the FP4 packing kernels: one warp per 128 positions of a row, 4 consecutive elements
/// per lane (so a lane writes one 32-bit word of codes), 8 lanes per block.
/// </summary>
public static class Mx8PackKernels
{
    /// <summary>Codes and scale bytes of q = MXFP8(x): scales from x's block amax, codes from q (zero codes for a non-finite block).</summary>
    public static void PackMx8Last<TIo, T>(ArrayView<T> x, ArrayView<T> q, ArrayView<uint> codes, ArrayView<byte> scales, int rows, int cols)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        int lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        int p = (int)(warp - row * chunks) * 128 + lane * 4;
        long i = row * cols + p;
        // The last warp of a row is partly past its end when cols is not a multiple of 128; a block is all in or all out.
        bool active = row < rows && p < cols;
        var io = default(TIo);
        uint m = active ? Max(Max(AbsBits(io.Load(x, i)), AbsBits(io.Load(x, i + 1))), Max(AbsBits(io.Load(x, i + 2)), AbsBits(io.Load(x, i + 3)))) : 0u;
        m = WarpMax(m, 8);
        if (!active) return;
        byte scale = PackCore.Mx8Scale(m, out float inverse);
        codes[i >> 2] = scale == E8M0.NaN ? 0u
            : PackCore.Mx8Code(io.Load(q, i), inverse) | (uint)PackCore.Mx8Code(io.Load(q, i + 1), inverse) << 8
            | (uint)PackCore.Mx8Code(io.Load(q, i + 2), inverse) << 16 | (uint)PackCore.Mx8Code(io.Load(q, i + 3), inverse) << 24;
        if ((lane & 7) == 0) scales[i >> 5] = scale;
    }

    /// <summary>MXFP8 storage back to values: E4M3 value × 2^s (the quantizer's product), rounded to the element type on store.</summary>
    public static void UnpackMx8Last<TIo, T>(ArrayView<uint> codes, ArrayView<byte> scales, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        uint word = codes[t];
        float scale = E8M0.Decode(scales[i >> 5]);
        var io = default(TIo);
        io.Store(y, i, E4M3.Decode((byte)word) * scale);
        io.Store(y, i + 1, E4M3.Decode((byte)(word >> 8)) * scale);
        io.Store(y, i + 2, E4M3.Decode((byte)(word >> 16)) * scale);
        io.Store(y, i + 3, E4M3.Decode((byte)(word >> 24)) * scale);
    }
}
