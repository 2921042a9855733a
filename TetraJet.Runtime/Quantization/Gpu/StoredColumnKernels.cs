using ILGPU;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Backward's re-quantizers (Q4 of Ŵ along N, Q6 of X̂ along T) reading the forward value in its FP4 storage form:
/// one pass dequantizes it (as the dtype it was kept in would hold it), applies the RHT and quantizes. Signature:
/// <see cref="StoredColumnKernel{T}"/>. The tiles of <see cref="ColumnKernels"/>, filled from the storage (a 4-byte code
/// word per 8 elements); reference: unpack, then the reference quantizer (the tests compare the two bit for bit). Rows
/// at or past <c>sourceRows</c> are the token axis' zero padding; rows up to <c>rows</c> are written.
/// </summary>
public static class StoredColumnKernels
{
    /// <summary>MX blocks of 32 along the first axis from a packed source: a [32 × 64] tile per group.</summary>
    public static void Mx<TIo, T, TSrc, TRule, TRound, THad>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer,
        ArrayView<T> y, int rows, int cols, int sourceRows, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource where TRule : struct, IMxRule
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var tile = SharedMemory.Allocate<float>(32 * ColumnTiles.Cols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var inverse = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var offset = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        var scale = SharedMemory.Allocate<float>(ColumnTiles.Cols);
        ColumnTiles.Origin(32, cols, ColumnTiles.Cols, out int r0, out int c0);
        ColumnTiles.LoadStored<TIo, T, TSrc>(codes, scales, outer, tile, sourceRows, cols, r0, c0, 32);
        Group.Barrier();
        bool finite = ColumnTiles.MxColumns<TRule, THad>(tile, partial, inverse, offset, scale, signs);
        // Storage needs cols a multiple of its block: whole runs of 8.
        ColumnTiles.MxRows<TIo, T, TRule, TRound>(tile, inverse, offset, scale, finite, y, default, rows, cols, r0, c0, 32, seed, stream, wholeRuns: true);
    }

    /// <summary>TetraJet-v2 NVFP4 along the first axis from a packed source: a [128 × 32] tile per group.</summary>
    public static void Nv<TIo, T, TSrc, TRound, THad>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer,
        ArrayView<T> y, int rows, int cols, int sourceRows, PhiloxKey seed, ulong stream, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T> where TSrc : struct, IStoredSource
        where TRound : struct, IRoundingMode where THad : struct, IHadamardMode
    {
        var tile = SharedMemory.Allocate<float>(128 * ColumnTiles.NvCols);
        var partial = SharedMemory.Allocate<uint>(KernelGeometry.GroupSize);
        var blockScales = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        var reciprocals = SharedMemory.Allocate<float>(8 * ColumnTiles.NvCols);
        ColumnTiles.Origin(128, cols, ColumnTiles.NvCols, out int r0, out int c0);
        ColumnTiles.LoadStored<TIo, T, TSrc>(codes, scales, outer, tile, sourceRows, cols, r0, c0, 128, ColumnTiles.NvCols);
        Group.Barrier();
        bool shared = ColumnTiles.NvColumns<NvOuter128, THad>(tile, partial, blockScales, reciprocals, default, signs);
        // Storage needs cols a multiple of its block: whole runs of 8.
        ColumnTiles.NvRows<TIo, T, TRound>(tile, blockScales, reciprocals, shared, y, default, rows, cols, r0, c0, seed, stream, wholeRuns: true);
    }
}

/// <summary>The storage format a packed-source kernel reads: MXFP4 or TetraJet-v2 NVFP4 (a compile-time constant).</summary>
public interface IStoredSource { bool Nv { get; } }

public readonly struct StoredMx : IStoredSource { public bool Nv => false; }

public readonly struct StoredNv : IStoredSource { public bool Nv => true; }
