using System.Runtime.CompilerServices;
using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The exact fallback of an FP8 GEMM D [m, n] = A [m, k] · B [n, k]ᵀ on operands written by the FP8 quantizers
/// (<see cref="Fp8Operand"/>; A's rows are D's rows, B's rows D's columns): for every flagged row r of A it recomputes
/// D[r, ·], and for every flagged row j of B the column D[·, j], from exact values — the side copy for a flagged row,
/// code × group scale otherwise — with FP32 accumulation on CUDA cores, overwriting what the FP8 GEMM wrote there.
/// Launched always, after the GEMM, on a fixed grid (<see cref="KernelGeometry.PatchThreads"/>), so the host never waits
/// for the flag counts; with no flags it exits at once. With a bias (length n) every rewritten element is the dot product
/// plus its column's bias, rounded once, as the GEMM's bias epilogue gives the others. With counters (int64) it adds
/// the two flag counts to <c>counters[slotA]</c> and <c>counters[slotB]</c>: the layer's fallback statistics at no
/// extra launch. Signature: <see cref="Fp8PatchKernel{T}"/>.
/// </summary>
/// <remarks>
/// A warp per output element, grid-striding over (flagged row × n) then (flagged column × m) items. Lane L accumulates
/// elements 4L … 4L + 3 of every 128 in order, then the warp adds the lanes' sums by a butterfly (xor 16, 8, 4, 2, 1):
/// a fixed order, so the same bits on every device. Both operands' values have at most 4 significant bits (E4M3 codes
/// times powers of two, or E2M1 values), so every product is exact (short of FP32 underflow) and a fused multiply-add
/// rounds as the separate add does. An element flagged in both A and B is written twice with the same value. Each flagged
/// line is listed once (<see cref="Fp8Operand.Claim"/>) and its marks make "is this line flagged" one load. k, lda and ldb are multiples of 4 (feature axes are multiples of 32, padded token axes of 128).
/// </remarks>
public static class Fp8PatchKernels
{
    /// <summary>Element q (0..3) of the 4 at row r, positions k0 … k0 + 3 of an operand: its exact value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Exact<TIo, T>(uint word, int q, bool flagged, ArrayView<T> side, long at, float scale) where T : unmanaged where TIo : struct, IElementIo<T> =>
        flagged ? default(TIo).Load(side, at + q) : Fp8Operand.Value((word >> (8 * q)) & 0xFFu) * scale;

    /// <summary>acc plus the products of the up to 4 elements k0 … k0 + 3 below k (<paramref name="left"/> = k − k0 ≥ 1), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Add4<TIo, T>(float acc, uint wa, uint wb, float sa, float sb, bool flaggedA, bool flaggedB, ArrayView<T> sideA, ArrayView<T> sideB,
        long atA, long atB, int left) where T : unmanaged where TIo : struct, IElementIo<T>
    {
        acc += Exact<TIo, T>(wa, 0, flaggedA, sideA, atA, sa) * Exact<TIo, T>(wb, 0, flaggedB, sideB, atB, sb);
        if (left > 1) acc += Exact<TIo, T>(wa, 1, flaggedA, sideA, atA, sa) * Exact<TIo, T>(wb, 1, flaggedB, sideB, atB, sb);
        if (left > 2) acc += Exact<TIo, T>(wa, 2, flaggedA, sideA, atA, sa) * Exact<TIo, T>(wb, 2, flaggedB, sideB, atB, sb);
        if (left > 3) acc += Exact<TIo, T>(wa, 3, flaggedA, sideA, atA, sa) * Exact<TIo, T>(wb, 3, flaggedB, sideB, atB, sb);
        return acc;
    }

    /// <summary>
    /// D[r, j] = Σ_k A[r, k]·B[j, k] from exact values, by one warp (see the remarks for the order). Two groups per trip,
    /// both loaded before either is added, so a lane has twice the loads in flight (the order of the sum is unchanged).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot<TIo, T>(ArrayView<byte> codesA, ArrayView<float> scalesA, ArrayView<T> sideA, bool flaggedA, int r,
        ArrayView<byte> codesB, ArrayView<float> scalesB, ArrayView<T> sideB, bool flaggedB, int j, int m, int n, int k, int lda, int ldb, int lane)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        var wordsA = codesA.Cast<uint>();
        var wordsB = codesB.Cast<uint>();
        float acc = 0f;
        for (int k0 = lane * 4; k0 < k; k0 += 256)
        {
            int k1 = k0 + 128, g = k0 >> 7;
            bool two = k1 < k;
            long atA0 = (long)r * lda + k0, atB0 = (long)j * ldb + k0, atA1 = atA0 + 128, atB1 = atB0 + 128;
            float sa0 = scalesA[(long)g * m + r], sb0 = scalesB[(long)g * n + j];
            float sa1 = two ? scalesA[(long)(g + 1) * m + r] : 0f, sb1 = two ? scalesB[(long)(g + 1) * n + j] : 0f;
            uint wa0 = flaggedA ? 0u : wordsA[atA0 >> 2], wb0 = flaggedB ? 0u : wordsB[atB0 >> 2];
            uint wa1 = flaggedA || !two ? 0u : wordsA[atA1 >> 2], wb1 = flaggedB || !two ? 0u : wordsB[atB1 >> 2];
            acc = Add4<TIo, T>(acc, wa0, wb0, sa0, sb0, flaggedA, flaggedB, sideA, sideB, atA0, atB0, k - k0);
            if (two) acc = Add4<TIo, T>(acc, wa1, wb1, sa1, sb1, flaggedA, flaggedB, sideA, sideB, atA1, atB1, k - k1);
        }
        for (int h = 16; h >= 1; h >>= 1) acc += Warp.ShuffleXor(acc, h);
        return acc;
    }

    public static void Patch<TIo, T>(ArrayView<byte> codesA, ArrayView<float> scalesA, ArrayView<int> flagsA, ArrayView<T> sideA,
        ArrayView<byte> codesB, ArrayView<float> scalesB, ArrayView<int> flagsB, ArrayView<T> sideB, ArrayView<T> d, ArrayView<T> bias,
        ArrayView<long> counters, int m, int n, int k, int lda, int ldb, int slotA, int slotB)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        int countA = Fp8Operand.Count(flagsA), countB = Fp8Operand.Count(flagsB);
        int t = ThreadIndex32(), lane = t & 31;
        // The layer's fallback statistics, kept on the device: one thread, ordered with the other launches by the stream.
        if (t == 0 && counters.Length > 0)
        {
            counters[slotA] += countA;
            counters[slotB] += countB;
        }
        long rowItems = (long)countA * n, items = rowItems + (long)countB * m;
        if (items == 0) return;
        long warps = (long)Grid.DimX * Group.DimX >> 5;
        for (long item = t >> 5; item < items; item += warps)
        {
            int r, j;
            if (item < rowItems)
            {
                long e = item / n;
                r = Fp8Operand.Entry(flagsA, (int)e);
                j = (int)(item - e * n);
            }
            else
            {
                long e = (item - rowItems) / m;
                j = Fp8Operand.Entry(flagsB, (int)e);
                r = (int)(item - rowItems - e * m);
            }
            bool flaggedA = countA > 0 && Fp8Operand.Listed(flagsA, r), flaggedB = countB > 0 && Fp8Operand.Listed(flagsB, j);
            float v = Dot<TIo, T>(codesA, scalesA, sideA, flaggedA, r, codesB, scalesB, sideB, flaggedB, j, m, n, k, lda, ldb, lane);
            // The bias in FP32 before the one rounding to T, as the GEMM's epilogue adds it.
            if (bias.Length > 0) v += default(TIo).Load(bias, j);
            if (lane == 0) default(TIo).Store(d, (long)r * n + j, v);
        }
    }
}
