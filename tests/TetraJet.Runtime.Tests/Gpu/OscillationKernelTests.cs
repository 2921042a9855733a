using TetraJet.Oscillation;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The oscillation report's device step, run by ILGPU's CPU accelerator, against the tracker's tensor path: same accumulators, same rate.</summary>
[Collection("cpu accelerator")]
public class OscillationKernelTests(CpuAcceleratorFixture fixture)
{
    // 37 × 64 and 19 × 128: counts that leave the last group of 128 threads partly empty.
    [Theory]
    [InlineData(QuantFormat.MXFP4, 37, 64)]
    [InlineData(QuantFormat.NVFP4, 19, 128)]
    [InlineData(QuantFormat.NVFP4Tensor, 16, 128)]
    public void Device_step_equals_the_tensor_path_bit_for_bit(QuantFormat format, int rows, int cols)
    {
        var spec = new QuantSpec(format, Rounding.Nearest);
        using var tracker = new OscillationTracker(spec);
        var rng = new Random(5);
        var baseline = GpuTestData.Adversarial(rows, cols, 17);
        float[]? prevW = null, prevQ = null, dfp = null, dq = null;
        double changed = 0;
        const int steps = 5;
        for (int t = 0; t <= steps; t++)
        {
            // Each step moves every weight by up to ±4% and back, so some quantized values flip and some stay.
            var w = baseline.Select(v => v * (1 + (t % 2 == 0 ? 1 : -1) * 0.04f * (float)rng.NextDouble())).ToArray();
            using var wt = tensor(w, rows, cols);
            tracker.Observe(wt);
            using var qt = tracker.Quantize(wt);
            var q = qt.data<float>().ToArray();
            if (prevW is null)
            {
                (prevW, prevQ, dfp, dq) = ((float[])w.Clone(), q, new float[w.Length], new float[w.Length]);
                continue;
            }
            GpuQuantizer.OscillationStep(fixture.Accelerator, w, q, prevW, prevQ!, dfp!, dq!, ref changed);
        }
        GpuTestData.AssertBitsEqual(tracker.Dfp!.data<float>().ToArray(), dfp!, "D_FP");
        GpuTestData.AssertBitsEqual(tracker.Dq!.data<float>().ToArray(), dq!, "D_Q");
        double rate = tracker.Metrics().RateOfChange;
        Assert.Equal(rate, changed / steps);
        Assert.InRange(rate, 1e-3, 0.9);
    }
}
