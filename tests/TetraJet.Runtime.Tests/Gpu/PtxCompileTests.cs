using System.Text.RegularExpressions;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>Every kernel instantiation compiles to PTX through ILGPU's backend; no GPU needed.</summary>
public class PtxCompileTests
{
    [Fact]
    public void Every_kernel_compiles_to_PTX_for_sm80_and_the_FP8_operand_kernels_for_sm90()
    {
        int count = 0, fp8Kernels = 0;
        foreach (var kernel in LibraryKernels.All())
        {
            string ptx = PtxCompiler.Compile(kernel);
            Assert.Contains(".entry", ptx);
            var target = Regex.Match(ptx, @"\.target\s+sm_(\d+)");
            Assert.True(target.Success, $"{kernel}: no target");
            // Only kernels that convert to FP8 in one instruction need sm_90 (they run where FP8 GEMMs do); every other one
            // still loads on sm_80.
            bool fp8 = ptx.Contains("cvt.rn.satfinite.e4m3x2.f32", StringComparison.Ordinal);
            Assert.Equal(fp8 ? "sm_90" : "sm_80", "sm_" + target.Groups[1].Value);
            if (fp8) fp8Kernels++;
            // IEEE division (not div.approx/div.full): the numerics depend on correctly rounded x / scale.
            Assert.DoesNotContain("div.approx", ptx);
            Assert.DoesNotContain("div.full", ptx);
            count++;
        }
        Assert.True(count > 100, $"only {count} kernels");
        Assert.True(fp8Kernels >= 4, $"only {fp8Kernels} kernels with FP8 conversions");
    }
    [Fact]
    public void The_NVFP4_kernels_narrow_pairs_in_one_conversion_and_keep_NaN_in_their_block_maxima()
    {
        // The CUDA-only steps the CPU accelerator cannot run: bfloat16 outputs two per cvt (KernelTraits.Bf16.NarrowPair),
        // block amax by NaN-keeping float maxima of |x| (Vec8.AbsMax).
        var spec = new TetraJet.Quantization.QuantSpec(TetraJet.Quantization.QuantFormat.NVFP4, Rounding.Stochastic);
        var rows = LibraryKernels.Rows(spec, true, false);
        string bf16 = PtxCompiler.Compile(rows.Bf16), f32 = PtxCompiler.Compile(rows.F32);
        Assert.Contains("cvt.rn.bf16x2.f32", bf16);
        Assert.DoesNotContain("cvt.rn.bf16x2.f32", f32);
        Assert.Contains("max.NaN.f32", bf16);
        string dual = PtxCompiler.Compile(LibraryKernels.Dual(spec, true).Bf16);
        Assert.Contains("cvt.rn.bf16x2.f32", dual);
        Assert.Contains("max.NaN.f32", dual);
    }
}
