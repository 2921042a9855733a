using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The quantizer kernels: explicitly grouped ILGPU kernels over a row-major [rows, cols] tensor, specialised by
/// struct type parameters. Reference beside each: <see cref="Reference.ReferenceQuantizer"/> (the tests compare
/// every kernel with it bit for bit). Group sizes are multiples of 32 and every lane of a warp reaches every
/// shuffle (inactive lanes carry zeros), so the warp reductions are well defined.
/// </summary>
/// <remarks>
/// Thread layouts, chosen for coalescing:
/// <list type="bullet">
/// <item>Block axis last ("*Last"): one warp per 128 consecutive positions of a row, 4 per lane; an MX block is
/// 8 lanes, an NVFP4 inner block 4 lanes, an outer 128-block the whole warp.</item>
/// <item>Block axis first ("*First"): one thread per (column, block of rows), threads running across columns, so a
/// warp reads 32 neighbouring elements of a row at a time; the block is read twice (amax, then quantize), the
/// second time from cache.</item>
/// </list>
/// Positions past the end of the block axis (token-axis padding) are zeros: they change no amax and are not written.
/// </remarks>
public static class QuantKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Uniform<TRound>(ulong seed, ulong stream, long i) where TRound : struct, IRoundingMode =>
        default(TRound).Mode == Rounding.Stochastic ? Philox.Uniform(seed, stream, i) : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Ema<TRound>(ArrayView<float> ema, long i) where TRound : struct, IRoundingMode =>
        default(TRound).Mode == Rounding.EmaGuided ? ema[i] : 0f;

    // ---------------------------------------------------------------- MX (MXFP4 both rules, MXFP8)

    /// <summary>Reference: ReferenceQuantizer.MxBlock. One element of an MX block whose amax bits are <paramref name="amax"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void MxStore<TIo, T, TRule, TRound>(ArrayView<T> y, ArrayView<float> ema, long i, float v, uint amax, ulong seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        float q;
        if (amax >= NonFiniteBits) q = float.NaN;                 // a non-finite block is all NaN
        else if (amax == 0) q = 0f;                               // a zero block is all 0
        else
        {
            int s = ScalarCore.MxExponent(Bits.AsFloat(amax), default(TRule).Fp8, default(TRule).Rule);
            q = ScalarCore.MxElement(v, s, default(TRule).Fp8, default(TRound).Mode, Uniform<TRound>(seed, stream, i), Ema<TRound>(ema, i));
        }
        default(TIo).Store(y, i, q);
    }

    /// <summary>MX blocks of 32 along the last axis (rows = lines, cols = len): one warp per 128 positions.</summary>
    public static void MxLast<TIo, T, TRule, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema,
        int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        long t = ThreadIndex();
        int lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        int p = (int)(warp - row * chunks) * 128 + lane * 4;
        bool active = row < rows;
        long i = row * cols + p;
        var io = default(TIo);
        float v0 = active && p < cols ? io.Load(x, i) : 0f;
        float v1 = active && p + 1 < cols ? io.Load(x, i + 1) : 0f;
        float v2 = active && p + 2 < cols ? io.Load(x, i + 2) : 0f;
        float v3 = active && p + 3 < cols ? io.Load(x, i + 3) : 0f;
        if (default(THad).Enabled) Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        uint m = WarpMax(Max(Max(AbsBits(v0), AbsBits(v1)), Max(AbsBits(v2), AbsBits(v3))), 8);
        if (!active) return;
        if (p < cols) MxStore<TIo, T, TRule, TRound>(y, ema, i, v0, m, seed, stream);
        if (p + 1 < cols) MxStore<TIo, T, TRule, TRound>(y, ema, i + 1, v1, m, seed, stream);
        if (p + 2 < cols) MxStore<TIo, T, TRule, TRound>(y, ema, i + 2, v2, m, seed, stream);
        if (p + 3 < cols) MxStore<TIo, T, TRule, TRound>(y, ema, i + 3, v3, m, seed, stream);
    }

    /// <summary>MX blocks of 32 along the first axis (lines = columns): one thread per (column, 32 rows).</summary>
    public static void MxFirst<TIo, T, TRule, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema,
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
            m = Max(m, AbsBits(ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            MxStore<TIo, T, TRule, TRound>(y, ema, i, ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs), m, seed, stream);
        }
    }

    /// <summary>
    /// Element k of a column run starting at row r0. Without RHT a plain load; with RHT the 16-group holding k is loaded
    /// into <paramref name="buf"/> and transformed when k starts it (rows past the end are zeros).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ColumnValue<TIo, T, THad>(ArrayView<T> x, ArrayView<float> buf, int rows, int cols, int c, int r0, int k, uint signs)
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

    // ---------------------------------------------------------------- NVFP4 (double block and per-tensor)

    /// <summary>Reference: ReferenceQuantizer.NvInner. Block scales from the outer and inner amax bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NvScale(uint outer, uint inner, out bool bad)
    {
        bad = outer >= NonFiniteBits;
        if (bad) return float.NaN;
        float so = ScalarCore.NvOuterScale(Bits.AsFloat(outer));
        float si = so == 0f ? 0f : ScalarCore.NvInnerScale(Bits.AsFloat(inner), so);
        return si * so;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NvStore<TIo, T, TRound>(ArrayView<T> y, ArrayView<float> ema, long i, float v, float scale, bool bad, ulong seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        float q = bad ? float.NaN
            : ScalarCore.NvGrid(v, scale, default(TRound).Mode, Uniform<TRound>(seed, stream, i), Ema<TRound>(ema, i)) * scale;
        default(TIo).Store(y, i, q);
    }

    /// <summary>
    /// NVFP4 inner blocks of 16 along the last axis: one warp per 128 positions (= one outer block). The outer amax is
    /// the warp's (TetraJet-v2) or the per-tensor amax bits in <paramref name="tensorAmax"/>[0] (NVIDIA recipe).
    /// </summary>
    public static void NvLast<TIo, T, TOuter, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, ulong seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TOuter : struct, INvOuter
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        long t = ThreadIndex();
        int lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        int p = (int)(warp - row * chunks) * 128 + lane * 4;
        bool active = row < rows;
        long i = row * cols + p;
        var io = default(TIo);
        float v0 = active && p < cols ? io.Load(x, i) : 0f;
        float v1 = active && p + 1 < cols ? io.Load(x, i + 1) : 0f;
        float v2 = active && p + 2 < cols ? io.Load(x, i + 2) : 0f;
        float v3 = active && p + 3 < cols ? io.Load(x, i + 3) : 0f;
        if (default(THad).Enabled) Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        uint inner = WarpMax(Max(Max(AbsBits(v0), AbsBits(v1)), Max(AbsBits(v2), AbsBits(v3))), 4);
        uint outer = default(TOuter).PerTensor ? tensorAmax[0] : WarpMaxFrom(inner, 4);
        if (!active) return;
        float scale = NvScale(outer, inner, out bool bad);
        if (p < cols) NvStore<TIo, T, TRound>(y, ema, i, v0, scale, bad, seed, stream);
        if (p + 1 < cols) NvStore<TIo, T, TRound>(y, ema, i + 1, v1, scale, bad, seed, stream);
        if (p + 2 < cols) NvStore<TIo, T, TRound>(y, ema, i + 2, v2, scale, bad, seed, stream);
        if (p + 3 < cols) NvStore<TIo, T, TRound>(y, ema, i + 3, v3, scale, bad, seed, stream);
    }

    /// <summary>
    /// NVFP4 along the first axis: one thread per (column, outer run of rows): 128 rows (TetraJet-v2, amax pass first)
    /// or 16 rows (per-tensor outer scale).
    /// </summary>
    public static void NvFirst<TIo, T, TOuter, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
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
            for (int k = 0; k < count; k++) outer = Max(outer, AbsBits(ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
        }
        for (int b = 0; b < count; b += 16)
        {
            int n = Math.Min(16, count - b);
            uint inner = 0;
            for (int k = b; k < b + n; k++) inner = Max(inner, AbsBits(ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs)));
            float scale = NvScale(outer, inner, out bool bad);
            for (int k = b; k < b + n; k++)
                NvStore<TIo, T, TRound>(y, ema, (long)(r0 + k) * cols + c, ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs), scale, bad, seed, stream);
        }
    }

    /// <summary>
    /// Per-tensor NVFP4 with 16×16 tiles (reference: ReferenceQuantizer.NvTiles): one thread per (column, 16-row band),
    /// the tile amax reduced over 16 lanes. Needs rows and cols multiples of 16.
    /// </summary>
    public static void NvTile16<TIo, T, TRound>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, ulong seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        long t = ThreadIndex();
        long band = t / cols;
        int c = (int)(t - band * cols);
        bool active = band < rows / 16;
        long i0 = band * 16 * cols + c;
        uint m = 0;
        if (active)
            for (int k = 0; k < 16; k++) m = Max(m, AbsBits(default(TIo).Load(x, i0 + (long)k * cols)));
        m = WarpMax(m, 16);
        if (!active) return;
        float scale = NvScale(tensorAmax[0], m, out bool bad);
        for (int k = 0; k < 16; k++)
        {
            long i = i0 + (long)k * cols;
            NvStore<TIo, T, TRound>(y, ema, i, default(TIo).Load(x, i), scale, bad, seed, stream);
        }
    }

    /// <summary>Per-tensor amax as |x| bits, atomically maxed into <paramref name="result"/>[0] (zeroed by the caller); grid-stride.</summary>
    public static void AbsMaxBits<TIo, T>(ArrayView<T> x, ArrayView<uint> result, long n)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long stride = (long)Grid.DimX * Group.DimX;
        uint m = 0;
        for (long i = ThreadIndex(); i < n; i += stride) m = Max(m, AbsBits(default(TIo).Load(x, i)));
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0) Atomic.Max(ref result[0], m);
    }

    /// <summary>Per-tensor amax of the RHT-transformed tensor along the last axis (NVIDIA recipe with RHT): NvLast's layout.</summary>
    public static void AbsMaxBitsHadamardLast<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        int lane = (int)(t & 31);
        int chunks = (cols + 127) >> 7;
        long warp = t >> 5, row = warp / chunks;
        int p = (int)(warp - row * chunks) * 128 + lane * 4;
        bool active = row < rows;
        long i = row * cols + p;
        var io = default(TIo);
        float v0 = active && p < cols ? io.Load(x, i) : 0f;
        float v1 = active && p + 1 < cols ? io.Load(x, i + 1) : 0f;
        float v2 = active && p + 2 < cols ? io.Load(x, i + 2) : 0f;
        float v3 = active && p + 3 < cols ? io.Load(x, i + 3) : 0f;
        Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        uint m = WarpMax(Max(Max(AbsBits(v0), AbsBits(v1)), Max(AbsBits(v2), AbsBits(v3))), 32);
        if (lane == 0 && m != 0) Atomic.Max(ref result[0], m);
    }

    /// <summary>Per-tensor amax of the RHT-transformed tensor along the first axis: one thread per (column, 16 rows).</summary>
    public static void AbsMaxBitsHadamardFirst<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long t = ThreadIndex();
        long blk = t / cols;
        int c = (int)(t - blk * cols);
        uint m = 0;
        if (blk < (rows + 15) / 16)
        {
            var buf = LocalMemory.Allocate<float>(16);
            int r0 = (int)blk * 16;
            for (int k = 0; k < 16 && r0 + k < rows; k++) m = Max(m, AbsBits(ColumnValue<TIo, T, WithHadamard>(x, buf, rows, cols, c, r0, k, signs)));
        }
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0 && m != 0) Atomic.Max(ref result[0], m);
    }

    // ---------------------------------------------------------------- fused backward quantizer of dY

    /// <summary>
    /// Reads dY [T, N] once and writes Q3 = MX(dY) along N (last axis, stream3) and Q5 = MX(dY) along T (first axis,
    /// zero-padded, stream5). One thread per (column, 32-row band); a warp holds 32 neighbouring columns, i.e. one
    /// Q3 block per row, so Q3's amax is a warp reduction and Q5's is the thread's own. Needs N a multiple of 32.
    /// Reference: two ReferenceQuantizer calls.
    /// </summary>
    public static void MxDualAxis<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5, ArrayView<float> ema,
        int rows, int cols, ulong seed, ulong stream3, ulong stream5)
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
            MxStore<TIo, T, TRule, TRound>(y3, ema, i, v, WarpMax(a, 32), seed, stream3);
        }
        for (int k = 0; k < count; k++)
        {
            long i = (long)(r0 + k) * cols + c;
            MxStore<TIo, T, TRule, TRound>(y5, ema, i, default(TIo).Load(x, i), m5, seed, stream5);
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
    public static void NvDualAxis<TIo, T, TRound, THad>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5, ArrayView<float> ema,
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
            float scale = NvScale(outer, inner, out bool bad);
            NvStore<TIo, T, TRound>(y3, ema, i, v, scale, bad, seed, stream3);
        }
        if (!active) return;
        var buf = LocalMemory.Allocate<float>(16);
        uint outer5 = 0;
        for (int k = 0; k < count; k++) outer5 = Max(outer5, AbsBits(ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5)));
        for (int b = 0; b < count; b += 16)
        {
            int n = Math.Min(16, count - b);
            uint inner = 0;
            for (int k = b; k < b + n; k++) inner = Max(inner, AbsBits(ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5)));
            float scale = NvScale(outer5, inner, out bool bad);
            for (int k = b; k < b + n; k++)
                NvStore<TIo, T, TRound>(y5, ema, (long)(r0 + k) * cols + c, ColumnValue<TIo, T, THad>(x, buf, rows, cols, c, r0, k, signs5), scale, bad, seed, stream5);
        }
    }
}
