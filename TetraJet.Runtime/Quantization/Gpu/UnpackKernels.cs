using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// An operand's storage form back to values along the last axis (the form the row kernels write with
/// <see cref="Store"/>): a thread per 8 elements, one 4-byte code word (8 bytes for MXFP8) and one 16-byte store (bf16; two for f32);
/// launched over <see cref="KernelGeometry.UnpackThreads"/>. The count is a multiple of 8 (rows of whole blocks).
/// Reference: the reference quantizer's dequantized output, which the tests compare bit for bit.
/// </summary>
public static class UnpackKernels
{
    static Vec8 Decode(uint w, float scale) => Fp4Grid.Decode8(w, scale);

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

    /// <summary>MXFP8 storage back to values: E4M3 value × 2^s, one 8-byte word of codes per thread.</summary>
    public static void Mx8<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int t = ThreadIndex32();
        long i = (long)t * 8;
        if (i >= count) return;
        ulong w = codes.Cast<ulong>()[t];
        float scale = E8M0.Decode(scales[i >> 5]);
        default(TIo).Store8(y, i, new Vec8
        {
            V0 = Fp8Operand.Value((uint)w & 0xFF) * scale, V1 = Fp8Operand.Value((uint)(w >> 8) & 0xFF) * scale,
            V2 = Fp8Operand.Value((uint)(w >> 16) & 0xFF) * scale, V3 = Fp8Operand.Value((uint)(w >> 24) & 0xFF) * scale,
            V4 = Fp8Operand.Value((uint)(w >> 32) & 0xFF) * scale, V5 = Fp8Operand.Value((uint)(w >> 40) & 0xFF) * scale,
            V6 = Fp8Operand.Value((uint)(w >> 48) & 0xFF) * scale, V7 = Fp8Operand.Value((uint)(w >> 56) & 0xFF) * scale,
        });
    }
}
