using TetraJet;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;

/// <summary>
/// `ptx --out DIR`: the PTX of the kernels `quantize` times (bfloat16 instantiations), one file per kernel, compiled on
/// the CPU with no GPU: for counting a change's SASS instructions and registers before a GPU run (bench/sass-count.sh).
/// </summary>
static class PtxDump
{
    static readonly (string File, Func<GpuKernel> Kernel)[] Kernels =
    [
        ("mxfp4-rtn-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.MXFP4), false, false)),
        ("mxfp4-sr-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false, false)),
        ("mxfp4-sr-rows-store", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false, true)),
        ("mxfp4-sr-columns", () => LibraryKernels.Columns(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false)),
        ("mxfp8-rtn-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.MXFP8), false, false)),
        ("nvfp4-rtn-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.NVFP4), false, false)),
        ("nvfp4-sr-rht-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true, false)),
        ("nvfp4-sr-rht-columns", () => LibraryKernels.Columns(new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true)),
        ("mxfp4-stored-sr-columns", () => LibraryKernels.StoredColumns(new QuantSpec(QuantFormat.MXFP4), new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false)),
        ("nvfp4-stored-sr-rht-columns", () => LibraryKernels.StoredColumns(new QuantSpec(QuantFormat.NVFP4), new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true)),
        ("nvfp4-sr-rht-rows-store", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true, true)),
        ("nvfp4-tensor-rtn-rows", () => LibraryKernels.Rows(new QuantSpec(QuantFormat.NVFP4Tensor), false, false)),
        ("mxfp4-sr-dual", () => LibraryKernels.Dual(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false)),
        ("nvfp4-sr-rht-dual", () => LibraryKernels.Dual(new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true)),
        ("fp8-mxfp4-sr-rows", () => LibraryKernels.Fp8Rows(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false)),
        ("fp8-mxfp4-sr-columns", () => LibraryKernels.Fp8Columns(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic))),
        ("fp8-mxfp4-sr-dual", () => LibraryKernels.Fp8Dual(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic))),
    ];

    public static int Run(string? dir)
    {
        if (dir is null)
        {
            Console.WriteLine("usage: TetraJet.GpuBench ptx --out DIR");
            return 2;
        }
        Directory.CreateDirectory(dir);
        foreach (var (file, kernel) in Kernels)
        {
            File.WriteAllText(Path.Combine(dir, file + ".ptx"), PtxCompiler.Compile(kernel().Bf16));
            Console.WriteLine($"ptx {file}");
        }
        return 0;
    }
}
