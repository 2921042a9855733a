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
/// A warp per four output elements that share a flagged line — D[r, j … j + 3] of a flagged row r of A, or D[r … r + 3, j]
/// of a flagged row j of B — grid-striding over those items (rows first). The flagged line's values are loaded once per
/// step and multiplied with the four partners', so a warp has five lines' loads in flight. Every element is summed the
/// same way: lane L accumulates elements 4L … 4L + 3 of every 128 in order, then the warp adds the lanes' sums by a
/// butterfly (xor 16, 8, 4, 2, 1): a fixed order, so the same bits on every device (products commute exactly, so which
/// operand is the shared line does not matter). Both operands' values have at most 4 significant bits (E4M3 codes
/// times powers of two, or E2M1 values), so every product is exact (short of FP32 underflow) and a fused multiply-add
/// rounds as the separate add does. An element flagged in both A and B is written twice with the same value. Each flagged
/// line is listed once (<see cref="Fp8Operand.Claim"/>) and its marks make "is this line flagged" one load. k, lda and ldb are multiples of 4 (feature axes are multiples of 32, padded token axes of 128).
/// </remarks>
public static class Fp8PatchKernels
{
    /// <summary>Output elements of one item: the partners of a flagged line.</summary>
    const int Partners = 4;

    /// <summary>
    /// The exact values of positions at … at + 3 of an operand line: the side copy for a flagged line, else code × the
    /// group scale at <paramref name="scaleAt"/>. Every position read is inside the line (its length is a multiple of 4).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Values<TIo, T>(ArrayView<uint> words, ArrayView<float> scales, ArrayView<T> side, bool flagged, long at, long scaleAt,
        out float v0, out float v1, out float v2, out float v3) where T : unmanaged where TIo : struct, IElementIo<T>
    {
        if (flagged)
        {
            v0 = default(TIo).Load(side, at); v1 = default(TIo).Load(side, at + 1);
            v2 = default(TIo).Load(side, at + 2); v3 = default(TIo).Load(side, at + 3);
        }
        else
        {
            uint w = words[at >> 2];
            float s = scales[scaleAt];
            v0 = Fp8Operand.Value(w & 0xFFu) * s; v1 = Fp8Operand.Value((w >> 8) & 0xFFu) * s;
            v2 = Fp8Operand.Value((w >> 16) & 0xFFu) * s; v3 = Fp8Operand.Value(w >> 24) * s;
        }
    }

    /// <summary>acc plus the products of the up to 4 positions below k (<paramref name="left"/> = k − k0 ≥ 1), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Add4(float acc, float x0, float x1, float x2, float x3, float y0, float y1, float y2, float y3, int left)
    {
        acc += x0 * y0;
        if (left > 1) acc += x1 * y1;
        if (left > 2) acc += x2 * y2;
        if (left > 3) acc += x3 * y3;
        return acc;
    }

    /// <summary>The warp's sum of the lanes' partial sums, in the butterfly's fixed order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float WarpSum(float acc)
    {
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
        int blocksN = (n + Partners - 1) / Partners, blocksM = (m + Partners - 1) / Partners;
        long rowItems = (long)countA * blocksN, items = rowItems + (long)countB * blocksM;
        if (items == 0) return;
        long warps = (long)Grid.DimX * Group.DimX >> 5;
        for (long item = t >> 5; item < items; item += warps)
        {
            // X: the flagged line (its side copy); Y: the operand of its four partners, first … first + 3 below limit.
            bool rows = item < rowItems;
            long e = rows ? item / blocksN : (item - rowItems) / blocksM;
            int line = rows ? Fp8Operand.Entry(flagsA, (int)e) : Fp8Operand.Entry(flagsB, (int)e);
            int first = (int)((rows ? item - e * blocksN : item - rowItems - e * blocksM) * Partners), limit = rows ? n : m;
            var sideX = rows ? sideA : sideB;
            var wordsY = (rows ? codesB : codesA).Cast<uint>();
            var scalesY = rows ? scalesB : scalesA;
            var sideY = rows ? sideB : sideA;
            var flagsY = rows ? flagsB : flagsA;
            bool anyY = (rows ? countB : countA) > 0;
            int ldx = rows ? lda : ldb, ldy = rows ? ldb : lda, linesY = rows ? n : m;
            int p0 = first, p1 = Min(first + 1, limit - 1), p2 = Min(first + 2, limit - 1), p3 = Min(first + 3, limit - 1);
            bool f0 = anyY && Fp8Operand.Listed(flagsY, p0), f1 = anyY && Fp8Operand.Listed(flagsY, p1);
            bool f2 = anyY && Fp8Operand.Listed(flagsY, p2), f3 = anyY && Fp8Operand.Listed(flagsY, p3);
            float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
            for (int k0 = lane * 4; k0 < k; k0 += 128)
            {
                long g = k0 >> 7;
                long atX = (long)line * ldx + k0;
                float x0 = default(TIo).Load(sideX, atX), x1 = default(TIo).Load(sideX, atX + 1);
                float x2 = default(TIo).Load(sideX, atX + 2), x3 = default(TIo).Load(sideX, atX + 3);
                Values<TIo, T>(wordsY, scalesY, sideY, f0, (long)p0 * ldy + k0, g * linesY + p0, out float a0, out float a1, out float a2, out float a3);
                Values<TIo, T>(wordsY, scalesY, sideY, f1, (long)p1 * ldy + k0, g * linesY + p1, out float b0, out float b1, out float b2, out float b3);
                Values<TIo, T>(wordsY, scalesY, sideY, f2, (long)p2 * ldy + k0, g * linesY + p2, out float c0, out float c1, out float c2, out float c3);
                Values<TIo, T>(wordsY, scalesY, sideY, f3, (long)p3 * ldy + k0, g * linesY + p3, out float d0, out float d1, out float d2, out float d3);
                int left = k - k0;
                acc0 = Add4(acc0, x0, x1, x2, x3, a0, a1, a2, a3, left);
                acc1 = Add4(acc1, x0, x1, x2, x3, b0, b1, b2, b3, left);
                acc2 = Add4(acc2, x0, x1, x2, x3, c0, c1, c2, c3, left);
                acc3 = Add4(acc3, x0, x1, x2, x3, d0, d1, d2, d3, left);
            }
            acc0 = WarpSum(acc0); acc1 = WarpSum(acc1); acc2 = WarpSum(acc2); acc3 = WarpSum(acc3);
            // Lane q writes partner q's element; the bias in FP32 before the one rounding to T, as the GEMM's epilogue adds it.
            if (lane < Partners && first + lane < limit)
            {
                float v = lane == 0 ? acc0 : lane == 1 ? acc1 : lane == 2 ? acc2 : acc3;
                int r = rows ? line : first + lane, j = rows ? first + lane : line;
                if (bias.Length > 0) v += default(TIo).Load(bias, j);
                default(TIo).Store(d, (long)r * n + j, v);
            }
        }
    }
}
