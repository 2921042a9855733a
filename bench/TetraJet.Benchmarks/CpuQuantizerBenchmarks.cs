using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using static TorchSharp.torch;

namespace TetraJet.Benchmarks;

/// <summary>
/// CPU quantizers on a [2048, 2048] float32 tensor (4M elements), blocks along the last axis, beside a plain copy of
/// the same size, the scalar reference and the same quantizer written as composed TorchSharp ops.
/// </summary>
[Config(typeof(Config))]
public class CpuQuantizerBenchmarks
{
    public const int Rows = 2048, Cols = 2048;
    public const long Bytes = 8L * Rows * Cols;

    sealed class Config : ManualConfig
    {
        public Config()
        {
            // A short job: one process (in-process, so no generated project to build), 2 warmups, 5 measured iterations.
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance));
            AddColumn(new GigabytesPerSecondColumn(Bytes));
            WithOptions(ConfigOptions.DisableOptimizationsValidator);
        }
    }

    float[] _x = [], _y = [], _t = [];
    Tensor? _tx;
    static readonly uint Signs = Philox.HadamardSigns(1, 2);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _x = new float[Rows * Cols];
        for (int i = 0; i < _x.Length; i++)
        {
            // Standard normal (Box–Muller): typical activations and gradients.
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            _x[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        _y = new float[_x.Length];
        _t = new float[_x.Length];
        _tx = tensor(_x, Rows, Cols);
    }

    [GlobalCleanup]
    public void Cleanup() => _tx?.Dispose();

    void Cpu(QuantFormat format, Rounding rounding) =>
        CpuQuantizer.Quantize(_x, _y, Rows, Cols, BlockAxis.Last, new QuantSpec(format, rounding), 1, 2);

    [Benchmark(Baseline = true, Description = "Span.CopyTo")] public void Copy() => _x.AsSpan().CopyTo(_y);

    [Benchmark(Description = "MXFP4 RTN")] public void Mxfp4Rtn() => Cpu(QuantFormat.MXFP4, Rounding.Nearest);
    [Benchmark(Description = "MXFP4 SR")] public void Mxfp4Sr() => Cpu(QuantFormat.MXFP4, Rounding.Stochastic);
    [Benchmark(Description = "NVFP4 RTN")] public void Nvfp4Rtn() => Cpu(QuantFormat.NVFP4, Rounding.Nearest);
    [Benchmark(Description = "NVFP4 SR")] public void Nvfp4Sr() => Cpu(QuantFormat.NVFP4, Rounding.Stochastic);
    [Benchmark(Description = "MXFP8 RTN")] public void Mxfp8Rtn() => Cpu(QuantFormat.MXFP8, Rounding.Nearest);

    [Benchmark(Description = "NVFP4 + RHT SR")]
    public void Nvfp4RhtSr()
    {
        CpuHadamard.Apply(_x, _t, Rows, Cols, BlockAxis.Last, Signs);
        CpuQuantizer.Quantize(_t, _y, Rows, Cols, BlockAxis.Last, new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), 1, 2);
    }

    [Benchmark(Description = "MXFP4 SR, first axis")]
    public void Mxfp4SrFirst() => CpuQuantizer.Quantize(_x, _y, Rows, Cols, BlockAxis.First, new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), 1, 2);

    [Benchmark(Description = "MXFP4 RTN, reference")]
    public void Mxfp4RtnReference() => ReferenceQuantizer.Quantize(_x, _y, Rows, Cols, BlockAxis.Last, new QuantSpec(QuantFormat.MXFP4));

    [Benchmark(Description = "NVFP4 RTN, reference")]
    public void Nvfp4RtnReference() => ReferenceQuantizer.Quantize(_x, _y, Rows, Cols, BlockAxis.Last, new QuantSpec(QuantFormat.NVFP4));

    [Benchmark(Description = "MXFP4 RTN, composed TorchSharp ops")]
    public void Mxfp4RtnComposed() { using var q = ComposedQuantizers.Mxfp4(_tx!); }

    [Benchmark(Description = "NVFP4 RTN, composed TorchSharp ops")]
    public void Nvfp4RtnComposed() { using var q = ComposedQuantizers.Nvfp4(_tx!); }
}
