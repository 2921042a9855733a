using System.Runtime.CompilerServices;
using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The backward quantizers of dY [T, N] from one read of it: Q3 along N (blocks along the last axis) and Q5 along T
/// (first axis, zero-padded), each with its own SR stream and, where the configuration has them, its own RHT signs
/// (those of its GEMM pair). Signature: <see cref="DualKernel{T}"/>. Reference: two ReferenceQuantizer calls.
/// </summary>
public static class DualKernels
{
    /// <summary>
    /// Reads dY [T, N] once and writes Q3 = MX(dY) along N (last axis, stream3) and Q5 = MX(dY) along T (first axis,
    /// zero-padded, stream5); no RHT (the signs are unused). One thread per (column, 32-row band); a warp holds 32 neighbouring columns, i.e. one
    /// Q3 block per row, so Q3's amax is a warp reduction and Q5's is the thread's own. Needs N a multiple of 32.
    /// Reference: two ReferenceQuantizer calls.
    /// </summary>
    public static void Mx<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5,
        int rows, int cols, ulong seed, ulong stream3, ulong stream5, uint signs3, uint signs5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        long t = ThreadIndex();
        long band = t / cols;
        int c = (int)(t - band * cols);
        bool active = band < (rows + 31) / 32;      // warp-uniform: cols is a multiple of 32
        if (!active) return;
        int r0 = (int)band * 32, count = Math.Min(32, rows - r0);
        uint m5 = 0;
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            float v = default(TIo).Load(x, i);
            uint a = AbsBits(v);
            m5 = Max(m5, a);
            uint m3 = WarpMax(a, 32);
            int s3 = RowKernels.MxExponent<TRule>(m3);
            default(TIo).Store(y3, i, RowKernels.MxGrid<TRule, TRound>(default, i, v, m3, s3, seed, stream3) * Formats.Bits.Pow2(s3));
        }
        int s5 = RowKernels.MxExponent<TRule>(m5);
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            default(TIo).Store(y5, i, RowKernels.MxGrid<TRule, TRound>(default, i, default(TIo).Load(x, i), m5, s5, seed, stream5) * Formats.Bits.Pow2(s5));
        }
    }

    /// <summary>
    /// TetraJet-v2's dY quantizers in one launch: Q3 = NVFP4(RHT(dY)) along N (stream3) and Q5 = NVFP4(RHT(dY)) along T
    /// (zero-padded, stream5), both with the 16-in-128 double block. One thread per (column, 128-row band); per row, a
    /// warp's 32 lanes hold 32 neighbouring columns, so the Q3 RHT and inner amax are 16-lane shuffles and the outer
    /// 128-column amax is 4 warps' maxima through group-shared memory. Q5 is then NvFirst's loop on the thread's own
    /// column (re-read from cache). Every thread runs every barrier (rows past the end are masked, not skipped), so
    /// any group size that is a multiple of 128 works. Needs N a multiple of 128. Reference: two ReferenceQuantizer
    /// calls after Hadamard.Apply.
    /// </summary>
    public static void Nv<TIo, T, TRound, THad>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5,
        int rows, int cols, ulong seed, ulong stream3, ulong stream5, uint signs3, uint signs5)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var partial = SharedMemory.Allocate<uint>(32);
        long t = ThreadIndex();
        long band = t / cols;
        int c = (int)(t - band * cols);
        int lane = Group.IdxX & 31, warp = Group.IdxX >> 5, first = warp & ~3;
        bool active = band < (rows + 127) / 128;
        int r0 = (int)band * 128, count = active ? Math.Min(128, rows - r0) : 0;
        for (int k = 0; k < 128; k++)
        {
            bool valid = k < count;
            long i = (long)(r0 + k) * cols + c;
            float v = valid ? default(TIo).Load(x, i) : 0f;
            if (default(THad).Enabled) v = Hadamard16Lanes(v, lane & 15, signs3);
            uint inner = WarpMax(AbsBits(v), 16);
            uint wmax = WarpMaxFrom(inner, 16);
            if (lane == 0) partial[warp] = wmax;
            Group.Barrier();
            uint outer = Max(Max(partial[first], partial[first + 1]), Max(partial[first + 2], partial[first + 3]));
            Group.Barrier();
            if (!valid) continue;
            float scale = RowKernels.NvScale(outer, inner, out bool bad);
            RowKernels.NvStore<TIo, T>(y3, i, RowKernels.NvGrid<TRound>(default, i, v, scale, bad, seed, stream3), scale, bad);
        }
        if (!active) return;
        var buf = LocalMemory.Allocate<float>(16);
        uint outer5 = 0;
        for (int k = 0; k < count; k++) outer5 = Max(outer5, AbsBits(ColumnKernels.Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5)));
        for (int b = 0; b < count; b += 16)
        {
            int n = Math.Min(16, count - b);
            uint inner = 0;
            for (int k = b; k < b + n; k++) inner = Max(inner, AbsBits(ColumnKernels.Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5)));
            float scale = RowKernels.NvScale(outer5, inner, out bool bad);
            for (int k = b; k < b + n; k++)
            {
                long i = (long)(r0 + k) * cols + c;
                float g = RowKernels.NvGrid<TRound>(default, i, ColumnKernels.Value<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5), scale, bad, seed, stream5);
                RowKernels.NvStore<TIo, T>(y5, i, g, scale, bad);
            }
        }
    }
}
