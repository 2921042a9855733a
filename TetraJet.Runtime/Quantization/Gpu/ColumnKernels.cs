using ILGPU;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Quantizers whose blocks run down the rows of a row-major [rows, cols] tensor (the token axis: Q5, Q6; Ŵ along N: Q4),
/// from a plain tensor. Signature: <see cref="ColumnKernel{T}"/>. A group per shared-memory tile (<see cref="ColumnTiles"/>:
/// coalesced 16-byte reads and writes, each block reduced once); launched over <see cref="KernelGeometry.ColumnThreads"/>.
/// Rows past the end (a block axis that is not a block multiple: token-axis padding) are zeros: they change no amax
/// and are not written. Reference: <see cref="Reference.ReferenceQuantizer"/>.
/// </summary>
public static class ColumnKernels
{
    /// <summary>MX blocks of 32 along the first axis: a [32 × 64] tile per group (one block per column); RHT per 16 rows when enabled.</summary>
    public static void Mx<TIo, T, TRule, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var tile = SharedMemory.Allocate<float>(32 * ColumnTiles.Cols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var inverse = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var offset = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var scale = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        ColumnTiles.Origin(32, cols, ColumnTiles.Cols, out int r0, out int c0);
        ColumnTiles.LoadPlain<TIo, T>(x, tile, rows, cols, r0, c0, 32);
        Group.Barrier();
        bool finite = ColumnTiles.MxColumns<TRule, THad>(tile, partial, inverse, offset, scale, signs);
        ColumnTiles.MxRows<TIo, T, TRule, TRound>(tile, inverse, offset, scale, finite, y, ema, rows, cols, r0, c0, 32, seed, stream);
    }

    /// <summary>
    /// NVFP4 along the first axis: a [128 × 32] tile per group, inner blocks of 16 rows, the outer scale from the 128 rows
    /// (TetraJet-v2) or from the per-tensor amax bits in <paramref name="tensorAmax"/>[0] (NVIDIA recipe).
    /// </summary>
    public static void Nv<TIo, T, TOuter, TRound, THad>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
        int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TOuter : struct, INvOuter
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var tile = SharedMemory.Allocate<float>(128 * ColumnTiles.NvCols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var scales = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        var reciprocals = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        ColumnTiles.Origin(128, cols, ColumnTiles.NvCols, out int r0, out int c0);
        ColumnTiles.LoadPlain<TIo, T>(x, tile, rows, cols, r0, c0, 128, ColumnTiles.NvCols);
        Group.Barrier();
        bool shared = ColumnTiles.NvColumns<TOuter, THad>(tile, partial, scales, reciprocals, tensorAmax, signs);
        ColumnTiles.NvRows<TIo, T, TRound>(tile, scales, reciprocals, shared, y, ema, rows, cols, r0, c0, seed, stream);
    }
}
