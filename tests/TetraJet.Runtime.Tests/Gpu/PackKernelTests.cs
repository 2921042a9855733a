using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The GPU packing kernels, run by ILGPU's CPU accelerator, against the tensor-operation path: same bytes, same values.</summary>
[Collection("cpu accelerator")]
public class PackKernelTests(CpuAcceleratorFixture fixture)
{
    // Features that are multiples of the block but not of 128 (DeiT-T's 192, 576, 768 → 96 and 32 here) and odd row counts:
    // a warp covers 128 positions, so the last one of a row is partly empty.
    [Theory]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, false, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 5, 192)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.Ocp, false, 3, 96)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, true, 7, 32)]
    [InlineData(QuantFormat.MXFP4, ScaleRule.TetraJet, false, 1, 160)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.NVFP4, ScaleRule.TetraJet, false, 3, 384)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, false, 4, 256)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, true, 4, 256)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, false, 5, 96)]
    [InlineData(QuantFormat.MXFP8, ScaleRule.TetraJet, true, 3, 160)]
    public void Kernels_write_the_tensor_paths_bytes_and_read_back_the_quantizers_values(QuantFormat format, ScaleRule rule, bool nonFinite, int rows, int cols)
    {
        var spec = new QuantSpec(format, Rounding.Nearest, rule);
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

/// <summary>Backward's re-quantizers reading packed X̂/Ŵ, on ILGPU's CPU accelerator, against unpack + the reference quantizer.</summary>
[Collection("cpu accelerator")]
public class PackedSourceKernelTests(CpuAcceleratorFixture fixture)
{
    [Theory]
    [InlineData(QuantFormat.MXFP4, QuantFormat.MXFP4, false, 64, 64)]
    [InlineData(QuantFormat.MXFP4, QuantFormat.MXFP4, false, 40, 40)]      // T not a block multiple: padded by the quantizer
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, true, 256, 256)]
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, true, 200, 208)]     // RHT: rows padded to 16 beforehand
    [InlineData(QuantFormat.NVFP4, QuantFormat.NVFP4, false, 130, 130)]
    [InlineData(QuantFormat.MXFP4, QuantFormat.NVFP4, true, 48, 48)]
    public void One_pass_from_storage_equals_unpack_then_quantize(QuantFormat sourceFormat, QuantFormat targetFormat, bool hadamard, int sourceRows, int rows)
    {
        var source = new QuantSpec(sourceFormat);
        var target = new QuantSpec(targetFormat, Rounding.Stochastic);
        const int cols = 128;
        const ulong seed = 9, stream = 31;
        var x = GpuTestData.Adversarial(sourceRows, cols, sourceRows + cols, nonFinite: false);
        var q = GpuTestData.Reference(x, sourceRows, cols, BlockAxis.Last, source, 0, 0, null, false, false);
        using var packed = DevicePacking.PackWithTensorOps(tensor(x, sourceRows, cols), tensor(q, sourceRows, cols), source);

        var padded = new float[rows * cols];
        Array.Copy(q, padded, q.Length);
        var expected = GpuTestData.Reference(padded, rows, cols, BlockAxis.First, target, seed, stream, null, true, hadamard);
        uint? signs = hadamard ? TetraJet.Randomness.Philox.HadamardSigns(seed, stream) : null;
        var actual = GpuPacking.QuantizeFromPacked(fixture.Accelerator, packed.Codes.data<byte>().ToArray(), packed.Scales.data<byte>().ToArray(),
            packed.Outer.data<float>().ToArray(), rows, cols, sourceRows, source, target, seed, stream, signs);
        GpuTestData.AssertBitsEqual(expected, actual, $"{target} from {source} rows {sourceRows}→{rows}");
    }
}
