using TetraJet.Plans;
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
        foreach (var c in Shapes(device)) yield return c;
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

    /// <summary>
    /// Lengths of a features axis that a format allows, as users meet them: multiples of its block that are not
    /// multiples of 128 or 64 where the block allows (32·odd for MX, 16·odd per-tensor NVFP4, 128·odd for TetraJet-v2
    /// NVFP4), the smallest first, then random ones from <paramref name="seed"/>.
    /// </summary>
    public static IEnumerable<int> FeatureLengths(QuantSpec spec, int count, int seed)
    {
        int m = spec.FeatureMultiple;
        var rng = new Random(seed);
        yield return m;
        for (int i = 1; i < count; i++) yield return m * (2 * rng.Next(1, m >= 128 ? 4 : 12) + 1);
    }

    /// <summary>Token counts: odd, small and large, random from <paramref name="seed"/>.</summary>
    public static IEnumerable<int> TokenCounts(int count, int seed)
    {
        var rng = new Random(seed);
        yield return 1;
        for (int i = 1; i < count; i++) yield return 2 * rng.Next(1, 700) + 1;
    }

    /// <summary>
    /// Every kernel family on legal shapes that are not multiples of 128: the quantizers along both axes (features
    /// lengths that are block multiples only, odd token counts with padding), the storing quantizer and the
    /// re-quantizers that read storage, and the fused dY kernel; float32 and bfloat16; each against the reference.
    /// </summary>
    public static IEnumerable<GpuCheck> Shapes(Device device)
    {
        int seed = 0;
        foreach (var spec in Specs().Where(s => !s.Tile16))
        {
            var features = FeatureLengths(spec, 3, ++seed).ToArray();
            var tokens = TokenCounts(3, ++seed).ToArray();
            for (int i = 0; i < features.Length; i++)
                foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                {
                    // Blocks along the features axis of [T, K], and along the (padded) token axis of the same tensor.
                    bool had = spec.Rounding != Rounding.EmaGuided && i == 1 && features[i] % Hadamard.Size == 0;
                    yield return One(device, spec, BlockAxis.Last, false, had, dtype, tokens[i], features[i], nonFinite: i == 2);
                    if (spec.Rounding != Rounding.EmaGuided)
                        yield return One(device, spec, BlockAxis.First, true, false, dtype, tokens[i], features[i], nonFinite: false);
                }
        }
        foreach (var spec in new QuantSpec[] { new(QuantFormat.MXFP4), new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp), new(QuantFormat.NVFP4), new(QuantFormat.MXFP4, Rounding.EmaGuided) })
            foreach (int k in FeatureLengths(spec, 3, ++seed))
                foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                    yield return Stored(device, spec, TokenCounts(2, ++seed).Last(), k, dtype);
        foreach (var spec in new QuantSpec[] { new(QuantFormat.MXFP4, Rounding.Stochastic), new(QuantFormat.NVFP4, Rounding.Stochastic) })
            foreach (int k in FeatureLengths(spec, 3, ++seed))
                foreach (bool had in spec.Format == QuantFormat.NVFP4 ? new[] { false, true } : new[] { false })
                {
                    int t = TokenCounts(2, ++seed).Last();
                    if (had) t = (t + 15) / 16 * 16;
                    yield return DualShape(device, spec, had, t, k);
                }
    }

    /// <summary>
    /// The storing quantizer on CUDA (X̂ or Ŵ and its storage form from one pass) against the reference's bytes and
    /// values, then the re-quantizer reading that storage along the padded token axis against unpack + the reference.
    /// </summary>
    static GpuCheck Stored(Device device, QuantSpec spec, int rows, int cols, ScalarType dtype)
    {
        string name = $"stored {spec} [{rows},{cols}] {dtype}: storage bytes and re-quantization from storage";
        try
        {
            using var scope = NewDisposeScope();
            var x = Data(rows, cols, rows * 3 + cols);
            if (dtype == ScalarType.BFloat16) x = x.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            var ema = spec.Rounding == Rounding.EmaGuided ? tensor(x.Select((v, i) => float.IsFinite(v) ? v * (1 + ((i % 5) - 2) * 0.05f) : 0f).ToArray(), new long[] { rows, cols }) : null;
            var xt = tensor(x, new long[] { rows, cols }).to(dtype);
            using var reference = Quantizer.QuantizePacked(xt, spec, BlockAxis.Last, 3, 4, ema);
            var (q, stored) = Quantizer.QuantizeStored(xt.to(device), spec, 3, 4, ema?.to(device));
            long bytes = reference.Codes.flatten().ne(stored.Codes.flatten().cpu()).sum().item<long>()
                + reference.Scales.flatten().ne(stored.Scales.flatten().cpu()).sum().item<long>()
                + reference.OuterScales.flatten().ne(stored.OuterScales.flatten().cpu()).logical_and(reference.OuterScales.flatten().isnan().logical_not()).sum().item<long>();
            var expected = reference.Dequantize().to(ScalarType.Float32).data<float>().ToArray();
            var values = Compare(name, expected, q.to(ScalarType.Float32).cpu().data<float>().ToArray());
            var unpacked = Compare(name, expected, stored.Dequantize().to(ScalarType.Float32).cpu().data<float>().ToArray());
            // Q6 of X̂ from its storage, T padded to 16 with the RHT (TetraJet-v2's path) or to the block (MX).
            var target = spec with { Rounding = Rounding.Stochastic };
            bool had = spec.Format == QuantFormat.NVFP4;
            long padded = had ? (rows + 15) / 16 * 16 : rows;
            var source = spec with { Rounding = Rounding.Nearest };
            uint signs = had ? Philox.HadamardSigns(3, 9) : 0u;
            var y6 = QuantBackend.For(device).ColumnsFromStored(StoredColumnQuantizer.Of(source, target, had), stored, padded, new SlotStreams(3, 8, signs));
            var pad = new float[padded * cols];
            Array.Copy(expected.Select(v => dtype == ScalarType.BFloat16 ? Bf16.Widen(Bf16.Narrow(v)) : v).ToArray(), pad, expected.Length);
            if (had) Hadamard.Apply(pad, (int)padded, cols, BlockAxis.First, signs);
            var e6 = new float[pad.Length];
            ReferenceQuantizer.Quantize(pad, e6, (int)padded, cols, BlockAxis.First, target, 3, 8, padBlockAxis: true);
            if (dtype == ScalarType.BFloat16) e6 = e6.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            var requantized = Compare(name, e6, y6.to(ScalarType.Float32).cpu().data<float>().ToArray());
            bool ok = bytes == 0 && values.Pass && unpacked.Pass && requantized.Pass;
            return new GpuCheck(name, ok, $"{bytes} storage bytes differ; values: {values.Detail}; unpacked: {unpacked.Detail}; from storage: {requantized.Detail}");
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>The fused dY kernel on a legal shape, each output with its own stream and RHT signs, against two reference calls.</summary>
    static GpuCheck DualShape(Device device, QuantSpec spec, bool hadamard, int rows, int cols)
    {
        string name = $"fused dY {spec}{(hadamard ? " RHT" : "")} [{rows},{cols}] bf16";
        try
        {
            using var scope = NewDisposeScope();
            var x = Data(rows, cols, rows + cols).Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            uint s3 = hadamard ? Philox.HadamardSigns(42, 30) : 0u, s5 = hadamard ? Philox.HadamardSigns(42, 50) : 0u;
            var (q3, q5) = QuantBackend.For(device).Dual(DualQuantizer.Of(spec, hadamard), tensor(x, new long[] { rows, cols }).to(ScalarType.BFloat16).to(device),
                new SlotStreams(42, 3, s3), new SlotStreams(42, 5, s5));
            float[] Ref(BlockAxis axis, ulong stream, uint signs, bool pad)
            {
                var input = (float[])x.Clone();
                if (hadamard) Hadamard.Apply(input, rows, cols, axis, signs);
                var y = new float[x.Length];
                ReferenceQuantizer.Quantize(input, y, rows, cols, axis, spec, 42, stream, padBlockAxis: pad);
                return y.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray();
            }
            var c3 = Compare(name + " Q3", Ref(BlockAxis.Last, 3, s3, false), q3.to(ScalarType.Float32).cpu().data<float>().ToArray());
            var c5 = Compare(name + " Q5", Ref(BlockAxis.First, 5, s5, true), q5.to(ScalarType.Float32).cpu().data<float>().ToArray());
            return new GpuCheck(name, c3.Pass && c5.Pass, "Q3: " + c3.Detail + "; Q5: " + c5.Detail);
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
            uint s3 = hadamard ? Philox.HadamardSigns(42, 3) : 0u, s5 = hadamard ? Philox.HadamardSigns(42, 5) : 0u;
            var (q3, q5) = QuantBackend.For(device).Dual(DualQuantizer.Of(spec, hadamard), tensor(x, new long[] { rows, cols }).to(dtype).to(device),
                new SlotStreams(42, 3, s3), new SlotStreams(42, 5, s5));
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
