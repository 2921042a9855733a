using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Backward's re-quantizers (Q4 of Ŵ along N, Q6 of X̂ along T) reading the forward value in its FP4 storage form:
/// one pass dequantizes it (as the dtype it was kept in would hold it), applies the RHT and quantizes. Signature:
/// <see cref="StoredColumnKernel{T}"/>. Same thread layout and steps as <see cref="ColumnKernels"/>; reference:
/// unpack, then the reference quantizer (the tests compare the two bit for bit). Rows at or past <c>sourceRows</c>
/// are the token axis' zero padding.
/// </summary>
public static class StoredColumnKernels
{
    /// <summary>Element i of an MXFP4 storage (blocks of 32 along its rows), rounded to the dtype it stood for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float MxSource<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, long i)
        where T : unmanaged where TIo : struct, IElementIo<T> =>
        default(TIo).Round(E2M1.Decode((codes[i >> 1] >> (int)((i & 1) << 2)) & 15) * E8M0.Decode(scales[i >> 5]));

    /// <summary>Element i of a TetraJet-v2 NVFP4 storage (inner 16, outer 128 along its rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float NvSource<TIo, T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, long i)
        where T : unmanaged where TIo : struct, IElementIo<T> =>
        default(TIo).Round(E2M1.Decode((codes[i >> 1] >> (int)((i & 1) << 2)) & 15) * (E4M3.Decode(scales[i >> 4]) * outer[i >> 7]));

    /// <summary>Element (row, c) of the source, or the padding's zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Source<TIo, T, TSrc>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int sourceRows, int cols, int row, int c)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource
    {
        if (row >= sourceRows) return 0f;
        long i = (long)row * cols + c;
        return default(TSrc).Nv ? NvSource<TIo, T>(codes, scales, outer, i) : MxSource<TIo, T>(codes, scales, i);
    }

    /// <summary>
    /// The column run [r0, r0 + count) decoded once into <paramref name="values"/> (local memory), transformed by 16-groups
    /// with the RHT: both passes of the quantizer (amax, then rounding) read it from there, not the storage twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void LoadRun<TIo, T, TSrc, THad>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<float> values,
        int sourceRows, int cols, int c, int r0, int count, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource where THad : struct, IHadamardMode
    {
        for (int k = 0; k < count; k++) values[k] = Source<TIo, T, TSrc>(codes, scales, outer, sourceRows, cols, r0 + k, c);
        if (default(THad).Enabled)
            for (int g = 0; g < count; g += 16) Hadamard16(values.SubView(g, 16), signs);
    }

    /// <summary>MX blocks of 32 along the first axis from a packed source: one thread per (column, 32 rows).</summary>
    public static void Mx<TIo, T, TSrc, TRule, TRound, THad>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer,
        ArrayView<T> y, int rows, int cols, int sourceRows, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        long t = ThreadIndex();
        long blk = t / cols;
        int c = (int)(t - blk * cols);
        if (blk >= (rows + 31) / 32) return;
        int r0 = (int)blk * 32, count = Math.Min(32, rows - r0);
        var values = LocalMemory.Allocate<float>(32);
        LoadRun<TIo, T, TSrc, THad>(codes, scales, outer, values, sourceRows, cols, c, r0, count, signs);
        uint m = 0;
        for (int k = 0; k < count; k++) m = Max(m, AbsBits(values[k]));
        int s = RowKernels.MxExponent<TRule>(m);
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            default(TIo).Store(y, i, RowKernels.MxGrid<TRule, TRound>(default, i, values[k], m, s, seed, stream) * Bits.Pow2(s));
        }
    }

    /// <summary>TetraJet-v2 NVFP4 along the first axis from a packed source: one thread per (column, 128 rows).</summary>
    public static void Nv<TIo, T, TSrc, TRound, THad>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer,
        ArrayView<T> y, int rows, int cols, int sourceRows, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        long t = ThreadIndex();
        long blk = t / cols;
        int c = (int)(t - blk * cols);
        if (blk >= (rows + 127) / 128) return;
        int r0 = (int)blk * 128, count = Math.Min(128, rows - r0);
        var values = LocalMemory.Allocate<float>(128);
        LoadRun<TIo, T, TSrc, THad>(codes, scales, outer, values, sourceRows, cols, c, r0, count, signs);
        uint outerAmax = 0;
        for (int k = 0; k < count; k++) outerAmax = Max(outerAmax, AbsBits(values[k]));
        for (int b = 0; b < count; b += 16)
        {
            int n = Math.Min(16, count - b);
            uint inner = 0;
            for (int k = b; k < b + n; k++) inner = Max(inner, AbsBits(values[k]));
            float scale = RowKernels.NvScale(outerAmax, inner, out bool bad);
            for (int k = b; k < b + n; k++)
            {
                long i = (long)(r0 + k) * cols + c;
                RowKernels.NvStore<TIo, T>(y, i, RowKernels.NvGrid<TRound>(default, i, values[k], scale, bad, seed, stream), scale, bad);
            }
        }
    }
}

/// <summary>The storage format a packed-source kernel reads: MXFP4 or TetraJet-v2 NVFP4 (a compile-time constant).</summary>
public interface IStoredSource { bool Nv { get; } }

public readonly struct StoredMx : IStoredSource { public bool Nv => false; }

public readonly struct StoredNv : IStoredSource { public bool Nv => true; }
