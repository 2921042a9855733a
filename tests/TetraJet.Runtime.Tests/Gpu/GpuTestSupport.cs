using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TetraJet.Formats;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using TorchSharp;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>A test that needs a CUDA device; skipped (not failed) where torch sees none.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!CudaAvailable.Value) Skip = "no CUDA device";
    }

    internal static readonly Lazy<bool> CudaAvailable = new(() =>
    {
        try { return torch.cuda.is_available(); }
        catch (Exception) { return false; }
    });
}

/// <summary>One ILGPU CPU accelerator for all tests: 32-lane warps like a GPU, 4 warps per group (the fused NVFP4 kernel needs 128 threads).</summary>
public sealed class CpuAcceleratorFixture : IDisposable
{
    public Context Context { get; } = Context.Create(b => b.CPU(new CPUDevice(32, 4, 1)));
    public Accelerator Accelerator { get; }

    public CpuAcceleratorFixture() => Accelerator = Context.CreateCPUAccelerator(0);

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}

[CollectionDefinition("cpu accelerator")]
public sealed class CpuAcceleratorCollection : ICollectionFixture<CpuAcceleratorFixture>;

/// <summary>Test data with the values that break quantizers, and bit-level comparison.</summary>
public static class GpuTestData
{
    /// <summary>
    /// A [rows, cols] tensor of Gaussian-ish values at varied block magnitudes, with ties on the E2M1 grid, block
    /// maxima at 6·2^k ± 1 ulp (and 448·2^k ± 1 ulp), zero blocks, subnormals and signed zeros; non-finite values
    /// (NaN, +Inf, −Inf) only when <paramref name="nonFinite"/>.
    /// </summary>
    public static float[] Adversarial(int rows, int cols, int seed, bool nonFinite = false)
    {
        var rng = new Random(seed);
        var x = new float[rows * cols];
        for (int i = 0; i < x.Length; i++)
        {
            int scaleExp = ((i / 16) % 11) - 5;
            x[i] = (float)(NextGaussian(rng) * Math.Pow(2, scaleExp));
        }
        float[] ties = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f, -0.25f, -2.5f, -5f];
        for (int k = 0; k < x.Length / 7; k++)
        {
            int i = rng.Next(x.Length);
            int e = rng.Next(-4, 5);
            switch (rng.Next(8))
            {
                case 0: x[i] = ties[rng.Next(ties.Length)] * MathF.Pow(2, e); break;
                case 1: x[i] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(6f * MathF.Pow(2, e)) + 1); break;
                case 2: x[i] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(6f * MathF.Pow(2, e)) - 1); break;
                case 3: x[i] = 6f * MathF.Pow(2, e); break;
                case 4: x[i] = BitConverter.UInt32BitsToSingle((uint)rng.Next(1, 0x7FFFFF)); break;      // subnormal
                case 5: x[i] = -0f; break;
                case 6: x[i] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(448f * MathF.Pow(2, e)) + (uint)rng.Next(-1, 2)); break;
                default: x[i] = 1e-40f * rng.Next(-3, 4); break;
            }
        }
        // A zero run of 32 (a zero block along the last axis for most shapes) and an all-subnormal run.
        for (int k = 0; k < Math.Min(32, x.Length); k++) x[k] = 0f;
        if (x.Length > 96) for (int k = 64; k < 96; k++) x[k] = BitConverter.UInt32BitsToSingle((uint)(k * 1000));
        if (nonFinite && x.Length > 300)
        {
            x[rng.Next(100, x.Length)] = float.NaN;
            x[rng.Next(100, x.Length)] = float.PositiveInfinity;
            x[rng.Next(100, x.Length)] = float.NegativeInfinity;
        }
        return x;
    }

    static double NextGaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>The oracle: RHT (when asked) then <see cref="ReferenceQuantizer.Quantize"/>.</summary>
    public static float[] Reference(float[] x, int rows, int cols, BlockAxis axis, QuantSpec spec, ulong seed, ulong stream,
        float[]? ema, bool pad, bool hadamard)
    {
        var input = (float[])x.Clone();
        if (hadamard) Hadamard.Apply(input, rows, cols, axis, Philox.HadamardSigns(seed, stream));
        var y = new float[x.Length];
        ReferenceQuantizer.Quantize(input, y, rows, cols, axis, spec, seed, stream, ema, pad);
        return y;
    }

    public static ushort[] ToBf16(float[] x) => x.Select(Bf16.Narrow).ToArray();
    public static float[] FromBf16(ushort[] x) => x.Select(Bf16.Widen).ToArray();

    /// <summary>Asserts equal bit patterns; any NaN equals any NaN (the oracle's NaN payload is not part of the contract).</summary>
    public static void AssertBitsEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i]) && float.IsNaN(actual[i])) continue;
            uint e = BitConverter.SingleToUInt32Bits(expected[i]), a = BitConverter.SingleToUInt32Bits(actual[i]);
            if (e != a) Assert.Fail($"{what}: element {i} expected {expected[i]:R} (0x{e:X8}), got {actual[i]:R} (0x{a:X8})");
        }
    }

    public static void AssertBitsEqual(ReadOnlySpan<ushort> expected, ReadOnlySpan<ushort> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            bool en = (expected[i] & 0x7FFF) > 0x7F80, an = (actual[i] & 0x7FFF) > 0x7F80;
            if (en && an) continue;
            if (expected[i] != actual[i]) Assert.Fail($"{what}: element {i} expected 0x{expected[i]:X4}, got 0x{actual[i]:X4}");
        }
    }

    /// <summary>Every quantizer spec: formats × rules × roundings (16×16 tiles included).</summary>
    public static IEnumerable<QuantSpec> AllSpecs()
    {
        foreach (Rounding r in Enum.GetValues<Rounding>())
        {
            yield return new(QuantFormat.MXFP4, r);
            yield return new(QuantFormat.MXFP4, r, ScaleRule.Ocp);
            yield return new(QuantFormat.MXFP8, r);
            yield return new(QuantFormat.NVFP4, r);
            yield return new(QuantFormat.NVFP4Tensor, r);
            yield return new(QuantFormat.NVFP4Tensor, r, Tile16: true);
        }
    }

    public static float[] Ema(float[] x, int seed)
    {
        var rng = new Random(seed);
        return x.Select(v => float.IsFinite(v) ? v + (float)((rng.NextDouble() - 0.5) * 0.25 * Math.Abs(v)) : 0f).ToArray();
    }
}
