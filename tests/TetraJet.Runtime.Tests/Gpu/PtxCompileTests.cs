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
}
