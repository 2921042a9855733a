using System.Runtime.CompilerServices;
using ILGPU;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// MXFP4 quantizers along the last axis (Q1, Q2, Q3: the reduction axis of their GEMM) that write the FP8 GEMM operand
/// (<see cref="Fp8Operand"/>): E4M3 codes [rows, cols], FP32 group scales <c>scales8[g · rows + r]</c>, the flag list of
/// rows with a broken group and their exact side copy [rows, cols]; with <see cref="Store"/> also the MXFP4 storage form
/// of the row kernels (codes [rows, cols/2], E8M0 scales) in the same pass. Signature: <see cref="Fp8RowKernel{T}"/>.
/// Layout as <see cref="RowKernels"/> (<see cref="RowLane"/>): a 128-group is 16 lanes, so a group's exponent span is a
/// shuffle reduction. cols is a multiple of 32; the last group of a row may be partial (its missing blocks count as
/// zero). Reference: <see cref="Reference.ReferenceQuantizer.QuantizePacked"/> (codes × group scale equal its values).
/// </summary>
public static class Fp8RowKernels
{
    /// <summary>
    /// One 16-lane group's work on the lane's 8 elements <paramref name="v"/> with their uniforms and Q-EMA values (zeros past the row's end, <paramref name="count"/> = 0 there
    /// and for rows past the end): codes, the group scale (lane 0 of the group), the storage form, and whether the group
    /// is broken. Every lane of the warp must call it (shuffles).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Group<TIo, T, TRule, TRound, TStore>(Vec8 v, Vec8 u, Vec8 e, int lane, int row, int pos, long i, int count,
        ArrayView<byte> codes8, ArrayView<float> scales8, ArrayView<byte> codes, ArrayView<byte> scales, int rows)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where TStore : struct, IStoreMode
    {
        uint m = WarpMax(v.AbsMax(), 4);
        int s = BlockMath.MxExponent<TRule>(m);
        int sMax = Fp8Operand.LiveMax(m, s), sMin = Fp8Operand.LiveMin(m, s);
        WarpMaxMin(ref sMax, ref sMin, 4, 16);
        if (count == 0) return false;
        var g = BlockMath.MxGrid<TRule, TRound>(v, m, s, u, e);
        if ((lane & 15) == 0) scales8[(pos >> 7) * rows + row] = Fp8Operand.GroupScale(sMax);
        codes8.Cast<ulong>()[i >> 3] = Fp8Operand.Codes(g, m, s, sMax);
        if (default(TStore).Enabled)
        {
            bool nan = m >= NonFiniteBits;
            codes.Cast<uint>()[i >> 3] = Fp8Operand.Fp4Codes(g, nan);
            if ((lane & 3) == 0) scales[i >> 5] = nan ? E8M0.NaN : E8M0.Encode(s);
        }
        return Fp8Operand.Broken(sMax, sMin);
    }

    /// <summary>
    /// The rare path, warp-uniform: for each half-warp whose group is broken, flag its row and, if this group claimed
    /// it (<see cref="Fp8Operand.Claim"/>: the first of the row's broken groups), write the row's exact values (the same
    /// steps again over the whole row, <see cref="SideRowOf"/>). Every lane of the warp must call it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Rare<TIo, T, TRule, TRound>(bool broken, int row, int lane, ArrayView<T> x, ArrayView<float> ema, ArrayView<int> flags,
        ArrayView<T> side, int cols, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        uint mine = broken ? 1u : 0u;
        if (WarpMax(mine, 32) == 0) return;
        for (int half = 0; half < 2; half++)
        {
            int r = Warp.Shuffle(row, half * 16);
            if (Warp.Shuffle(mine, half * 16) == 0) continue;
            uint claimed = lane == 0 && Fp8Operand.Claim(flags, r) ? 1u : 0u;
            if (Warp.Shuffle(claimed, 0) == 0) continue;
            SideRowOf<TIo, T, TRule, TRound>(x, ema, side, r, cols, lane, seed, stream);
        }
    }

    /// <summary>Q(x) of a whole row into the side copy, by the warp, 256 positions at a time: the main path's steps, so its values. Every lane of the warp calls it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SideRowOf<TIo, T, TRule, TRound>(ArrayView<T> x, ArrayView<float> ema, ArrayView<T> side, int row, int cols, int lane, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule where TRound : struct, IRoundingMode
    {
        for (int p = lane * 8; p - lane * 8 < cols; p += 256)
        {
            int n = Min(Max(cols - p, 0), 8);
            bool vector = (cols & 7) == 0 && n == 8;
            long i = (long)row * cols + p;
            Vec8 v = Vec8Io.Load<TIo, T>(x, i, n, vector);
            uint m = WarpMax(v.AbsMax(), 4);
            if (n == 0) continue;
            int s = BlockMath.MxExponent<TRule>(m);
            var g = BlockMath.MxGrid<TRule, TRound>(v, m, s, Uniforms<TRound>(seed, stream, i, n, vector), Vec8Io.Ema<TRound>(ema, i, n, vector));
            Vec8Io.Store<TIo, T>(side, i, n, vector, BlockMath.MxValues(g, s));
        }
    }

    /// <summary>MXFP4 blocks of 32 along the last axis into the FP8 operand (and, with <see cref="Store"/>, the storage form). Launched over <see cref="KernelGeometry.RowThreads"/>.</summary>
    public static void Mx<TIo, T, TRule, TRound, TStore>(ArrayView<T> x, ArrayView<float> ema, ArrayView<byte> codes8, ArrayView<float> scales8,
        ArrayView<int> flags, ArrayView<T> side, ArrayView<byte> codes, ArrayView<byte> scales, int rows, int cols, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where TStore : struct, IStoreMode
    {
        var at = RowLane.Current(rows, cols);
        if (!at.InRows) return;
        var loaded = Vec8Io.LoadWithUniforms<TIo, T, TRound>(x, at.Index, at.Count, at.Vector, seed, stream);
        bool broken = Group<TIo, T, TRule, TRound, TStore>(loaded.V, loaded.U, Vec8Io.Ema<TRound>(ema, at.Index, at.Count, at.Vector), at.Lane, at.Row, at.Pos, at.Index, at.Count, codes8, scales8,
            codes, scales, rows);
        Rare<TIo, T, TRule, TRound>(broken, at.Row, at.Lane, x, ema, flags, side, cols, seed, stream);
    }
}
