using ILGPU;
using ILGPU.Runtime;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// A row repeated down a matrix: the FP8 GEMM's C, the bias broadcast over the rows of D [m, n] before the GEMM adds the
/// product to it (β = 1). torch's <c>expand(m, n).contiguous()</c> does the same through its strided, unvectorized copy;
/// here a thread writes one 16-byte unit (8 bfloat16 or 4 float32 values).
/// The bytes move unchanged, whatever the element type. Reference: that torch expression, which the tests compare.
/// </summary>
public static class BroadcastKernels
{
    /// <summary>
    /// d[u] = row[u mod rowUnits] for u below <paramref name="count"/> (rows × rowUnits), in 16-byte units; both views
    /// 16-byte aligned. Launched over <see cref="KernelGeometry.BroadcastThreads"/>.
    /// </summary>
    public static void Rows(ArrayView<Bytes16> row, ArrayView<Bytes16> d, int rowUnits, int count)
    {
        int t = ThreadIndex32();
        if (t >= count) return;
        // Unsigned: t and rowUnits are non-negative, and an unsigned division is the shorter sequence.
        int r = (int)((uint)t / (uint)rowUnits);
        d.AsAligned16()[t] = row.AsAligned16()[t - r * rowUnits];
    }
}
