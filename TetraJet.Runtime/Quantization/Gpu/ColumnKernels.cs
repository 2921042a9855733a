using System.Runtime.CompilerServices;
using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Quantizers whose blocks run down the rows of a row-major [rows, cols] tensor (the token axis: Q5, Q6; Ŵ along N: Q4),
/// from a plain tensor. Signature: <see cref="ColumnKernel{T}"/>. One thread per (column, run of rows), threads running
/// across columns so a warp reads 32 neighbouring elements of a row at a time; the run is read twice (amax, then
/// quantize), the second time from cache. Rows past the end (a block axis that is not a block multiple: token-axis
/// padding) are zeros: they change no amax and are not written. Reference: <see cref="Reference.ReferenceQuantizer"/>.
/// </summary>
public static class ColumnKernels
{
    /// <summary>
    /// Element k of a column run starting at row r0. Without RHT a plain load; with RHT the 16-group holding k is loaded
    /// into <paramref name="buf"/> and transformed when k starts it (rows past the end are zeros).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Value<TIo, T, THad>(ArrayView<T> x, ArrayView<float> buf, int rows, int cols, int c, int r0, int k, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where THad : struct, IHadamardMode
    {
        if (!default(THad).Enabled) return default(TIo).Load(x, (long)(r0 + k) * cols + c);
        if ((k & 15) == 0)
        {
            int g0 = r0 + k;
            for (int j = 0; j < 16; j++)
                buf[j] = g0 + j < rows ? default(TIo).Load(x, (long)(g0 + j) * cols + c) : 0f;
            Hadamard16(buf, signs);
        }
        return buf[k & 15];
    }

    /// <summary>MX blocks of 32 along the first axis: one thread per (column, 32 rows). Launched over cols·⌈rows/32⌉ threads.</summary>
    public static void Mx<TIo, T, TRule, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        long t = ThreadIndex();
        long blk = t / cols;
        int c = (int)(t - blk * cols);
        if (blk >= (rows + 31) / 32) return;
        int r0 = (int)blk * 32, count = Math.Min(32, rows - r0);
        var buf = LocalMemory.Allocate<float>(16);
        uint m = 0;
        for (int k = 0; k < count; k++)
            m = Max(m, AbsBits(Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
        int s = RowKernels.MxExponent<TRule>(m);
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            float g = RowKernels.MxGrid<TRule, TRound>(ema, i, Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs), m, s, seed, stream);
            default(TIo).Store(y, i, g * Formats.Bits.Pow2(s));
        }
    }

    /// <summary>
    /// NVFP4 along the first axis: one thread per (column, outer run of rows): 128 rows (TetraJet-v2, amax pass first)
    /// or 16 rows (per-tensor outer scale from <paramref name="tensorAmax"/>[0]). Launched over cols·⌈rows/run⌉ threads.
    /// </summary>
    public static void Nv<TIo, T, TOuter, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TOuter : struct, INvOuter
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        int span = default(TOuter).PerTensor ? 16 : 128;
        long t = ThreadIndex();
        long blk = t / cols;
        int c = (int)(t - blk * cols);
        if (blk >= (rows + span - 1) / span) return;
        int r0 = (int)blk * span, count = Math.Min(span, rows - r0);
        var buf = LocalMemory.Allocate<float>(16);
        uint outer;
        if (default(TOuter).PerTensor) outer = tensorAmax[0];
        else
        {
            outer = 0;
            for (int k = 0; k < count; k++) outer = Max(outer, AbsBits(Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
        }
        for (int b = 0; b < count; b += 16)
        {
            int n = Math.Min(16, count - b);
            uint inner = 0;
            for (int k = b; k < b + n; k++) inner = Max(inner, AbsBits(Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
            float scale = RowKernels.NvScale(outer, inner, out bool bad);
            for (int k = b; k < b + n; k++)
            {
                long i = (long)(r0 + k) * cols + c;
                float g = RowKernels.NvGrid<TRound>(ema, i, Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs), scale, bad, seed, stream);
                RowKernels.NvStore<TIo, T>(y, i, g, scale, bad);
            }
        }
    }
}
