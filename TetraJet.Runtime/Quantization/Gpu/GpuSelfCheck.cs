using TetraJet.Quantization.Reference;
using TetraJet.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>One check's outcome.</summary>
public sealed record GpuCheck(string Name, bool Pass, string Detail);

/// <summary>
/// The CUDA checks (llm.c style: the fast kernel against its reference, on every run): every quantizer through
/// <see cref="Quantizer.Quantize"/> on torch CUDA tensors against the scalar reference on the CPU, bit for bit, and the
/// ordering stress test. Used by the CUDA tests and by the GPU benchmark's <c>test</c> command.
/// </summary>
public static class GpuSelfCheck
{
    /// <summary>Every correctness check and the stress tests on <paramref name="device"/>.</summary>
    public static IEnumerable<GpuCheck> RunAll(Device device, int stressIterations = 200)
    {
        foreach (var c in Correctness(device)) yield return c;
        yield return Dual(device, ScalarType.Float32, new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false);
        yield return Dual(device, ScalarType.BFloat16, new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), false);
        yield return Dual(device, ScalarType.Float32, new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true);
        yield return Dual(device, ScalarType.BFloat16, new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), true);
        yield return Ordering(device, new QuantSpec(QuantFormat.MXFP4), ScalarType.BFloat16, stressIterations);
        yield return Ordering(device, new QuantSpec(QuantFormat.NVFP4Tensor, Rounding.Stochastic), ScalarType.Float32, stressIterations);
        yield return Ordering(device, new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), ScalarType.BFloat16, stressIterations, hadamard: true);
    }

    static IEnumerable<QuantSpec> Specs()
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

    /// <summary>Every spec × axis × padding × RHT × dtype, plus non-finite inputs.</summary>
    public static IEnumerable<GpuCheck> Correctness(Device device)
    {
        foreach (var spec in Specs())
            foreach (var axis in spec.Tile16 ? new[] { BlockAxis.Last } : new[] { BlockAxis.Last, BlockAxis.First })
                foreach (bool pad in spec.Tile16 ? new[] { false } : new[] { false, true })
                    foreach (bool had in spec.Tile16 || spec.Rounding == Rounding.EmaGuided ? new[] { false } : new[] { false, true })
                        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                        {
                            int len = spec.Tile16 ? 0 : spec.Format == QuantFormat.NVFP4 ? (pad ? 1168 : 1024) : (pad ? 1040 : 1024);
                            var (rows, cols) = spec.Tile16 ? (256, 768) : axis == BlockAxis.Last ? (96, len) : (len, 160);
                            yield return One(device, spec, axis, pad, had, dtype, rows, cols, nonFinite: false);
                        }
        foreach (var spec in Specs().Where(s => s.Rounding == Rounding.Nearest))
            foreach (var axis in spec.Tile16 ? new[] { BlockAxis.Last } : new[] { BlockAxis.Last, BlockAxis.First })
                yield return One(device, spec, axis, false, false, ScalarType.BFloat16, 128, 256, nonFinite: true);
    }

    static GpuCheck One(Device device, QuantSpec spec, BlockAxis axis, bool pad, bool hadamard, ScalarType dtype, int rows, int cols, bool nonFinite)
    {
        string name = $"{spec} axis={axis} pad={pad} rht={hadamard} {dtype} [{rows},{cols}]{(nonFinite ? " nan/inf" : "")}";
        try
        {
            const ulong seed = 1234, stream = 99;
            var x = Data(rows, cols, rows + 7 * cols, nonFinite);
            if (dtype == ScalarType.BFloat16) x = x.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            float[]? ema = spec.Rounding == Rounding.EmaGuided ? x.Select((v, i) => float.IsFinite(v) ? v * (1 + ((i % 7) - 3) * 0.03f) : 0f).ToArray() : null;
            var expected = Expected(x, rows, cols, axis, spec, seed, stream, ema, pad, hadamard);

            using var scope = NewDisposeScope();
            var xt = tensor(x, new long[] { rows, cols }).to(dtype).to(device);
            var et = ema is null ? null : tensor(ema, new long[] { rows, cols }).to(device);
            var y = Quantizer.Quantize(xt, spec, axis, seed, stream, et, pad, hadamard);
            var actual = y.to(ScalarType.Float32).cpu().data<float>().ToArray();
            if (dtype == ScalarType.BFloat16) expected = expected.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            return Compare(name, expected, actual);
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>The oracle: RHT (when asked), then the scalar reference.</summary>
    public static float[] Expected(float[] x, int rows, int cols, BlockAxis axis, QuantSpec spec, ulong seed, ulong stream, float[]? ema, bool pad, bool hadamard)
    {
        var input = (float[])x.Clone();
        if (hadamard) Hadamard.Apply(input, rows, cols, axis, Philox.HadamardSigns(seed, stream));
        var y = new float[x.Length];
        ReferenceQuantizer.Quantize(input, y, rows, cols, axis, spec, seed, stream, ema, pad);
        return y;
    }

    /// <summary>Bit comparison, any NaN equal to any NaN.</summary>
    static GpuCheck Compare(string name, float[] expected, float[] actual)
    {
        int bad = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i]) && float.IsNaN(actual[i])) continue;
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i])) { bad++; if (first < 0) first = i; }
        }
        return bad == 0
            ? new GpuCheck(name, true, $"{expected.Length} elements bit-exact")
            : new GpuCheck(name, false, $"{bad} of {expected.Length} differ; first at {first}: expected {expected[first]:R}, got {actual[first]:R}");
    }

    /// <summary>Gaussian values at varied magnitudes with ties, 6·2^k ± 1 ulp maxima, zero runs, subnormals; NaN/±Inf when asked.</summary>
    public static float[] Data(int rows, int cols, int seed, bool nonFinite = false)
    {
        var rng = new Random(seed);
        var x = new float[rows * cols];
        for (int i = 0; i < x.Length; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            x[i] = (float)(g * Math.Pow(2, (i / 16 % 11) - 5));
        }
        float[] ties = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f];
        for (int k = 0; k < x.Length / 8; k++)
        {
            int i = rng.Next(x.Length);
            float p = MathF.Pow(2, rng.Next(-4, 5)) * (rng.Next(2) == 0 ? 1 : -1);
            x[i] = rng.Next(6) switch
            {
                0 => ties[rng.Next(ties.Length)] * p,
                1 => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(6f * p) + 1),
                2 => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(6f * p) - 1),
                3 => 6f * p,
                4 => BitConverter.UInt32BitsToSingle((uint)rng.Next(1, 0x7FFFFF)),
                _ => -0f,
            };
        }
        for (int k = 0; k < Math.Min(128, x.Length); k++) x[k] = 0f;
        if (nonFinite)
        {
            x[rng.Next(x.Length)] = float.NaN;
            x[rng.Next(x.Length)] = float.PositiveInfinity;
            x[rng.Next(x.Length)] = float.NegativeInfinity;
        }
        return x;
    }

    /// <summary>The fused dY kernel against two reference calls (Q3 along N, Q5 along T padded).</summary>
    static GpuCheck Dual(Device device, ScalarType dtype, QuantSpec spec, bool hadamard)
    {
        const int rows = 1008, cols = 640;
        string name = $"fused dY {spec}{(hadamard ? " RHT" : "")} Q3+Q5 {dtype} [{rows},{cols}]";
        try
        {
            var x = Data(rows, cols, 5);
            if (dtype == ScalarType.BFloat16) x = x.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            var e3 = Expected(x, rows, cols, BlockAxis.Last, spec, 42, 3, null, false, hadamard);
            var e5 = Expected(x, rows, cols, BlockAxis.First, spec, 42, 5, null, true, hadamard);
            if (dtype == ScalarType.BFloat16)
            {
                e3 = e3.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
                e5 = e5.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            }
            using var scope = NewDisposeScope();
            var (q3, q5) = GpuQuantizer.QuantizeDual(tensor(x, new long[] { rows, cols }).to(dtype).to(device), spec, 42, 3, 5, hadamard);
            var a3 = q3.to(ScalarType.Float32).cpu().data<float>().ToArray();
            var a5 = q5.to(ScalarType.Float32).cpu().data<float>().ToArray();
            var c3 = Compare(name + " Q3", e3, a3);
            var c5 = Compare(name + " Q5", e5, a5);
            return new GpuCheck(name, c3.Pass && c5.Pass, c3.Detail + "; " + c5.Detail);
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>
    /// Ordering: per iteration, torch op (a = x·2^j into fresh caching-allocator memory) → quantizer kernels → torch op
    /// (b = Q(a)·2^-j, compared with the expected Q(x) on the GPU, mismatches summed on the GPU); no synchronisation
    /// until the end. Q(2^j·x) = 2^j·Q(x) exactly for these formats, so every iteration must match one CPU reference.
    /// A kernel that ran before the torch op finished, or a torch op that read before the kernel finished, shows up
    /// as mismatches.
    /// </summary>
    public static GpuCheck Ordering(Device device, QuantSpec spec, ScalarType dtype, int iterations, bool hadamard = false)
    {
        const int rows = 4096, cols = 4096;
        string name = $"ordering stress {spec}{(hadamard ? " RHT" : "")} {dtype} [{rows},{cols}] x{iterations}";
        try
        {
            var x = Data(rows, cols, 17);
            for (int i = 0; i < x.Length; i++) if (x[i] != 0 && Math.Abs(x[i]) < 1e-30f) x[i] = 1e-3f;   // keep 2^j·x normal
            if (dtype == ScalarType.BFloat16) x = x.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            var expected = Expected(x, rows, cols, BlockAxis.Last, spec, 7, 8, null, false, hadamard);
            if (dtype == ScalarType.BFloat16) expected = expected.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            using var scope = NewDisposeScope();
            var xt = tensor(x, new long[] { rows, cols }).to(dtype).to(device);
            var want = tensor(expected, new long[] { rows, cols }).to(device);
            var mismatches = zeros(1, ScalarType.Int64, device);
            for (int it = 0; it < iterations; it++)
            {
                using var inner = NewDisposeScope();
                int j = it % 8 - 4;
                var a = xt * Math.Pow(2, j);
                var q = Quantizer.Quantize(a, spec, BlockAxis.Last, 7, 8, null, false, hadamard);
                var b = q.to(ScalarType.Float32) * Math.Pow(2, -j);
                mismatches.add_(b.ne(want).logical_and(b.eq(b).logical_or(want.eq(want))).sum());
            }
            long bad = mismatches.cpu().item<long>();
            return new GpuCheck(name, bad == 0, $"{bad} mismatching elements over {iterations} iterations");
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }
}
