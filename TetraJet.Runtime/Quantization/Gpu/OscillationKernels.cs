using ILGPU;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// One step of the oscillation report (<see cref="Oscillation.OscillationTracker.Observe"/>) on the device: the
/// tracker's dozen torch operations per weight (differences, absolute values, the flip test, a float64 mean, two
/// copies), each a launch and a pass over the weight, in one pass and two launches. Reference: the tracker's tensor
/// path, which the tests compare bit for bit. Geometry: <see cref="KernelGeometry.OscillationThreads"/>.
/// </summary>
public static class OscillationKernels
{
    /// <summary>
    /// Over the <paramref name="count"/> elements, grid-striding: D_FP += |w − w_prev|, D_Q += |q − q_prev| (FP32, as the
    /// reference), the flip test of <see cref="Oscillation.OscillationTracker.ChangeTolerance"/>, then w and q become
    /// the previous ones. The flips are counted per thread, summed per warp and added to <paramref name="flips"/>[0]
    /// (an integer sum: the order of the atomics changes nothing).
    /// </summary>
    public static void Observe(ArrayView<float> w, ArrayView<float> q, ArrayView<float> prevW, ArrayView<float> prevQ,
        ArrayView<float> dfp, ArrayView<float> dq, ArrayView<int> flips, int count)
    {
        int stride = Grid.DimX * Group.DimX, flipped = 0;
        for (long i = ThreadIndex32(); i < count; i += stride)
        {
            float wi = w[i], qi = q[i], pq = prevQ[i];
            dfp[i] += Math.Abs(wi - prevW[i]);
            float d = Math.Abs(qi - pq);
            dq[i] += d;
            // Max of two non-NaN values whenever the test can hold: a NaN in q or q_prev makes d NaN and the test false.
            if (d > Math.Max(Math.Abs(qi), Math.Abs(pq)) * Oscillation.OscillationTracker.ChangeTolerance) flipped++;
            prevW[i] = wi;
            prevQ[i] = qi;
        }
        flipped = WarpSum(flipped);
        if (Warp.LaneIdx == 0 && flipped != 0) Atomic.Add(ref flips[0], flipped);
    }

    /// <summary>
    /// changed[0] += flips[0] / count (the step's flipped fraction, float64, as the reference's mean of the 0/1 flags),
    /// then flips[0] = 0 for the next step. One thread's work, after <see cref="Observe"/> on the same stream.
    /// </summary>
    public static void Accumulate(ArrayView<int> flips, ArrayView<double> changed, int count)
    {
        if (ThreadIndex32() != 0) return;
        changed[0] += (double)flips[0] / count;
        flips[0] = 0;
    }
}
