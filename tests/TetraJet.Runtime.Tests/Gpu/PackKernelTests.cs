using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The GPU packing kernels, run by ILGPU's CPU accelerator, against the tensor-operation path: same bytes, same values.</summary>
[Collection("cpu accelerator")]
public class PackKernelTests(CpuAcceleratorFixture fixture)
{
    [Theory]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, false)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, true)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, false)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, true)]
    public void Kernels_write_the_tensor_paths_bytes_and_read_back_the_quantizers_values(QuantFormat format, ScaleRule rule, bool nonFinite)
    {
        var spec = new QuantSpec(format, Rounding.Nearest, rule);
        const int rows = 4, cols = 256;
        var x = GpuTestData.Adversarial(rows, cols, 11 + (int)format, nonFinite);
        var q = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 0, 0, null, false, false);
        var (codes, scales, outer, values) = GpuPacking.RoundTrip(fixture.Accelerator, x, q, rows, cols, spec);

        using var packed = DevicePacking.PackWithTensorOps(tensor(x, rows, cols), tensor(q, rows, cols), spec);
        Assert.Equal(packed.Codes.data<byte>().ToArray(), codes);
        Assert.Equal(packed.Scales.data<byte>().ToArray(), scales);
        Assert.Equal(packed.Outer.data<float>().ToArray(), outer);
        GpuTestData.AssertBitsEqual(q, values, $"{spec} unpacked");
    }
}
