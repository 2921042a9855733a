using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// An operand's storage form back to values along the last axis (the form the row kernels write with
/// <see cref="Store"/>): a thread per 8 elements, one 4-byte code word and one 16-byte store (bf16; two for f32);
/// launched over <see cref="KernelGeometry.UnpackThreads"/>. The count is a multiple of 8 (rows of whole blocks).
/// Reference: the reference quantizer's dequantized output, which the tests compare bit for bit.
/// </summary>
public static class UnpackKernels
{
    static Vec8 Decode(uint w, float scale) => new()
    {
        V0 = Fp4Grid.Decode(w) * scale, V1 = Fp4Grid.Decode(w >> 4) * scale, V2 = Fp4Grid.Decode(w >> 8) * scale, V3 = Fp4Grid.Decode(w >> 12) * scale,
        V4 = Fp4Grid.Decode(w >> 16) * scale, V5 = Fp4Grid.Decode(w >> 20) * scale, V6 = Fp4Grid.Decode(w >> 24) * scale, V7 = Fp4Grid.Decode(w >> 28) * scale,
    };

    /// <summary>MXFP4 storage back to values: code × 2^s, rounded to the element type on store.</summary>
    public static void Mx<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int t = ThreadIndex32();
        long i = (long)t * 8;
        if (i >= count) return;
        default(TIo).Store8(y, i, Decode(codes.Cast<uint>()[t], E8M0.Decode(scales[i >> 5])));
    }

    /// <summary>NVFP4 storage back to values: code × FP32(s_i·s_o).</summary>
    public static void Nv<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int t = ThreadIndex32();
        long i = (long)t * 8;
        if (i >= count) return;
        default(TIo).Store8(y, i, Decode(codes.Cast<uint>()[t], E4M3.Decode(scales[i >> 4]) * outer[i >> 7]));
    }
}
