using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// An operand's storage form back to values along the last axis (the form the row kernels write with
/// <see cref="Store"/>): one thread per 4 elements, one 16-bit word of FP4 codes (32-bit of MXFP8). Reference: the reference quantizer's
/// dequantized output, which the tests compare bit for bit.
/// </summary>
public static class UnpackKernels
{
    /// <summary>MXFP4 storage back to values: code × 2^s, rounded to the element type on store.</summary>
    public static void Mx<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        int word = codes.Cast<ushort>()[t];
        float scale = E8M0.Decode(scales[i >> 5]);
        var io = default(TIo);
        io.Store(y, i, E2M1.Decode(word & 15) * scale);
        io.Store(y, i + 1, E2M1.Decode((word >> 4) & 15) * scale);
        io.Store(y, i + 2, E2M1.Decode((word >> 8) & 15) * scale);
        io.Store(y, i + 3, E2M1.Decode((word >> 12) & 15) * scale);
    }

    /// <summary>NVFP4 storage back to values: code × FP32(s_i·s_o).</summary>
    public static void Nv<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        int word = codes.Cast<ushort>()[t];
        float scale = E4M3.Decode(scales[i >> 4]) * outer[i >> 7];
        var io = default(TIo);
        io.Store(y, i, E2M1.Decode(word & 15) * scale);
        io.Store(y, i + 1, E2M1.Decode((word >> 4) & 15) * scale);
        io.Store(y, i + 2, E2M1.Decode((word >> 8) & 15) * scale);
        io.Store(y, i + 3, E2M1.Decode((word >> 12) & 15) * scale);
    }

    /// <summary>MXFP8 storage back to values: E4M3 value × 2^s, one 32-bit word of four codes per thread.</summary>
    public static void Mx8<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long i = t * 4;
        if (i >= count) return;
        uint word = codes.Cast<uint>()[t];
        float scale = E8M0.Decode(scales[i >> 5]);
        var io = default(TIo);
        io.Store(y, i, E4M3.Decode((byte)word) * scale);
        io.Store(y, i + 1, E4M3.Decode((byte)(word >> 8)) * scale);
        io.Store(y, i + 2, E4M3.Decode((byte)(word >> 16)) * scale);
        io.Store(y, i + 3, E4M3.Decode((byte)(word >> 24)) * scale);
    }
}
