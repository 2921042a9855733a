using System.Runtime.CompilerServices;
using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The per-tensor amax pass of per-tensor NVFP4 (the NVIDIA recipe), run before its quantizer: |x| bits maxed
/// atomically into result[0] (zeroed by the caller), of x itself or of its RHT along either axis. Signature:
/// <see cref="AmaxKernel{T}"/>.
/// </summary>
public static class AmaxKernels
{
    /// <summary>Per-tensor amax as |x| bits, atomically maxed into <paramref name="result"/>[0] (zeroed by the caller); grid-stride.</summary>
    public static void Plain<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
        where T : unmanaged where TIo : struct, IElementIo<T>
    {
        long n = (long)rows * cols;
        long stride = (long)Grid.DimX * Group.DimX;
        uint m = 0;
        for (long i = ThreadIndex(); i < n; i += stride) m = Max(m, AbsBits(default(TIo).Load(x, i)));
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0) Atomic.Max(ref result[0], m);
    }

    /// <summary>Per-tensor amax of the RHT-transformed tensor along the last axis (NVIDIA recipe with RHT): the row kernels' layout.</summary>
    public static void HadamardRows<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
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
    public static void HadamardColumns<TIo, T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs)
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
            for (int k = 0; k < 16 && r0 + k < rows; k++) m = Max(m, AbsBits(ColumnKernels.Value<TIo, T, WithHadamard>(x, buf, rows, cols, c, r0, k, signs)));
        }
        m = WarpMax(m, 32);
        if (Warp.LaneIdx == 0 && m != 0) Atomic.Max(ref result[0], m);
    }
}
