using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The tensor API on torch CUDA tensors against the CPU reference; skipped without CUDA.</summary>
public class CudaTensorTests
{
    static void AssertAll(IEnumerable<GpuCheck> checks)
    {
        var failed = checks.Where(c => !c.Pass).Select(c => $"{c.Name}: {c.Detail}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
    }

    [CudaFact]
    public void Every_quantizer_on_CUDA_tensors_matches_the_reference_bit_for_bit() => AssertAll(GpuSelfCheck.Correctness(CUDA));

    [CudaFact]
    public void FP8_operands_on_CUDA_tensors_are_exact_and_flag_every_broken_span() => AssertAll(Fp8SelfCheck.RunAll(CUDA));

    [CudaFact]
    public void Torch_op_then_kernel_then_torch_op_stays_ordered_without_synchronising()
    {
        AssertAll([
            GpuSelfCheck.Ordering(CUDA, new QuantSpec(QuantFormat.MXFP4), ScalarType.BFloat16, 100),
            GpuSelfCheck.Ordering(CUDA, new QuantSpec(QuantFormat.NVFP4Tensor, Rounding.Stochastic), ScalarType.Float32, 100),
        ]);
    }

    [CudaFact]
    public void Fused_dY_quantizer_matches_two_reference_calls()
    {
        const int rows = 100, cols = 64;
        var x = GpuSelfCheck.Data(rows, cols, 9);
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
        var (q3, q5) = Quantizer.QuantizeBothAxes(tensor(x, new long[] { rows, cols }).to(CUDA), spec, 1, 2, 3);
        GpuTestData.AssertBitsEqual(GpuSelfCheck.Expected(x, rows, cols, BlockAxis.Last, spec, 1, 2, null, false, false), q3.cpu().data<float>().ToArray(), "Q3");
        GpuTestData.AssertBitsEqual(GpuSelfCheck.Expected(x, rows, cols, BlockAxis.First, spec, 1, 3, null, true, false), q5.cpu().data<float>().ToArray(), "Q5");
    }
}
