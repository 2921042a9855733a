using System.Text.RegularExpressions;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>Every kernel instantiation compiles to PTX through ILGPU's backend; no GPU needed.</summary>
public class PtxCompileTests
{
    [Fact]
    public void Every_kernel_compiles_to_PTX_for_sm80_or_newer()
    {
        int count = 0;
        foreach (var kernel in LibraryKernels.All())
        {
            string ptx = PtxCompiler.Compile(kernel);
            Assert.Contains(".entry", ptx);
            var target = Regex.Match(ptx, @"\.target\s+sm_(\d+)");
            Assert.True(target.Success && int.Parse(target.Groups[1].Value) >= 80, $"{kernel}: {target.Value}");
            // IEEE division (not div.approx/div.full): the numerics depend on correctly rounded x / scale.
            Assert.DoesNotContain("div.approx", ptx);
            Assert.DoesNotContain("div.full", ptx);
            count++;
        }
        Assert.True(count > 100, $"only {count} kernels");
    }
}
