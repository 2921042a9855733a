using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests;

/// <summary>
/// The storage form QLinear keeps X̂ and Ŵ in (FP4, and MXFP8 for OutControl's outlier channels), written by the
/// storing quantizer on the CPU: its bytes are the reference quantizer's, and unpacking gives back Q(x) bit for bit,
/// on the quantizer test data (ties, amax beside 6·2^k, subnormals, huge values, NaN/Inf), in float32 and bfloat16.
/// </summary>
public class StorageFormTests
{
    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in Specs.Keys)
            foreach (bool bf16 in new[] { false, true })
                data.Add(name, bf16);
        return data;
    }

    static readonly Dictionary<string, QuantSpec> Specs = new()
    {
        ["mxfp4"] = new(QuantFormat.MXFP4),
        ["mxfp4-ocp"] = new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp),
        ["mxfp4-sr"] = new(QuantFormat.MXFP4, Rounding.Stochastic),
        ["mxfp4-ema"] = new(QuantFormat.MXFP4, Rounding.EmaGuided),
        ["nvfp4"] = new(QuantFormat.NVFP4),
        ["nvfp4-sr"] = new(QuantFormat.NVFP4, Rounding.Stochastic),
        ["mxfp8"] = new(QuantFormat.MXFP8),
        ["mxfp8-sr"] = new(QuantFormat.MXFP8, Rounding.Stochastic),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Unpack_gives_back_the_quantizers_bits(string name, bool bf16)
    {
        var spec = Specs[name];
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        for (int trial = 0; trial < 24; trial++)
        {
            int rows = rng.Next(1, 10), cols = 128 * rng.Next(1, 4);
            using var scope = NewDisposeScope();
            var x = tensor(QuantizerTestData.Tensor(rng, rows, cols, nonFinite: trial % 3 == 0), rows, cols);
            if (bf16) x = x.to(ScalarType.BFloat16);
            var ema = spec.Rounding == Rounding.EmaGuided ? x.to(ScalarType.Float32).add(randn(rows, cols).mul(0.1)) : null;
            var q = Quantizer.Quantize(x, spec, BlockAxis.Last, seed: 99, stream: (ulong)trial, ema: ema);
            var (stored, packed) = Quantizer.QuantizeStored(x, spec, seed: 99, stream: (ulong)trial, ema: ema);
            using var reference = Quantizer.QuantizePacked(x, spec, BlockAxis.Last, seed: 99, stream: (ulong)trial, ema: ema);
            string what = $"{name} {(bf16 ? "bf16" : "fp32")} trial {trial} [{rows}, {cols}]";
            Assert.True(reference.Codes.flatten().eq(packed.Codes.flatten()).all().item<bool>(), what + ": codes differ from the reference");
            Assert.True(reference.Scales.flatten().eq(packed.Scales.flatten()).all().item<bool>(), what + ": scales differ from the reference");
            QuantizerTestData.AssertBitsEqual(reference.OuterScales.flatten().data<float>().ToArray(), packed.OuterScales.flatten().data<float>().ToArray(), what + ": outer scales");
            var expected = q.to(ScalarType.Float32).data<float>().ToArray();
            QuantizerTestData.AssertBitsEqual(expected, stored.to(ScalarType.Float32).data<float>().ToArray(), what + ": the storing quantizer's values");
            var back = packed.Dequantize();
            Assert.Equal(q.dtype, back.dtype);
            QuantizerTestData.AssertBitsEqual(expected, back.to(ScalarType.Float32).data<float>().ToArray(), what);
        }
    }

    [Fact]
    public void Branch_free_nearest_code_is_E2M1s()
    {
        // Every grid point, midpoint and their float neighbours, and a sweep.
        var probes = new List<float> { 0f, float.Epsilon, 6f, 7f, 1e30f, float.PositiveInfinity };
        foreach (float p in new[] { 0.25f, 0.5f, 0.75f, 1f, 1.25f, 1.5f, 1.75f, 2f, 2.5f, 3f, 3.5f, 4f, 5f, 6f })
            probes.AddRange([p, MathF.BitDecrement(p), MathF.BitIncrement(p)]);
        for (int i = 0; i <= 7000; i++) probes.Add(i / 1000f);
        foreach (float a in probes) Assert.Equal(TetraJet.Formats.E2M1.NearestCode(a), PackCore.NearestCode(a));
    }

    [Fact]
    public void Scalar_fallback_writes_the_same_bytes()
    {
        var rng = new Random(4);
        foreach (var spec in new[] { Specs["mxfp4"], Specs["nvfp4"], Specs["mxfp8"] })
        {
            var x = tensor(QuantizerTestData.Tensor(rng, 8, 256, nonFinite: true), 8, 256);
            using var vectorised = Quantizer.QuantizeStored(x, spec).Stored;
            TetraJet.Quantization.Cpu.CpuQuantizer.ForceScalar = true;
            try
            {
                using var scalar = Quantizer.QuantizeStored(x, spec).Stored;
                Assert.True(scalar.Codes.eq(vectorised.Codes).all().item<bool>());
                Assert.True(scalar.Scales.eq(vectorised.Scales).all().item<bool>());
            }
            finally { TetraJet.Quantization.Cpu.CpuQuantizer.ForceScalar = false; }
        }
    }

    [Fact]
    public void NVFP4_storage_is_the_reference_quantizers_codes_and_scales()
    {
        var spec = new QuantSpec(QuantFormat.NVFP4);
        manual_seed(3);
        var x = randn(6, 256).mul(tensor(new float[] { 1, 1e-3f, 40, 1, 7, 1e4f }).unsqueeze(1));
        using var reference = Quantizer.QuantizePacked(x, spec);
        using var packed = Quantizer.QuantizeStored(x, spec).Stored;
        Assert.Equal(reference.Codes.data<byte>().ToArray(), packed.Codes.data<byte>().ToArray());
        Assert.Equal(reference.Scales.data<byte>().ToArray(), packed.Scales.data<byte>().ToArray());
        Assert.Equal(reference.OuterScales.data<float>().ToArray(), packed.OuterScales.data<float>().ToArray());
        Assert.Equal(new long[] { 6, 128 }, packed.Codes.shape);
        Assert.Equal(new long[] { 6, 16 }, packed.Scales.shape);
        Assert.Equal(new long[] { 6, 2 }, packed.OuterScales.shape);
    }

    [Fact]
    public void MXFP4_of_a_worked_block_stores_codes_and_a_power_of_two_scale()
    {
        // One block of 32 holding 3, -1.5, 0.25 and zeros: stored under the scale 2^(floor(log2 3) - 2) = 2^-1 as the
        // grid values 6, -3, 0.5, i.e. codes 7, 8|5 and 1; scale byte 127 - 1.
        var values = new float[32];
        values[0] = 3f; values[1] = -1.5f; values[2] = 0.25f;
        var q = tensor(values, 1, 32);
        using var packed = Quantizer.QuantizeStored(q, new QuantSpec(QuantFormat.MXFP4)).Stored;
        var codes = packed.Codes.data<byte>().ToArray();
        Assert.Equal(16, codes.Length);
        Assert.Equal(0xD7, codes[0]);         // element 0 = code 7 (low nibble), element 1 = code 13 = -3 (high)
        Assert.Equal(0x01, codes[1]);         // element 2 = code 1 (0.5), element 3 = 0
        Assert.Equal(new byte[] { 126 }, packed.Scales.data<byte>().ToArray());
    }

    [Fact]
    public void MXFP8_storage_is_the_reference_quantizers_codes_and_scales()
    {
        var spec = new QuantSpec(QuantFormat.MXFP8);
        manual_seed(5);
        var x = randn(6, 256).mul(tensor(new float[] { 1, 1e-3f, 40, 1e-30f, 7, 1e4f }).unsqueeze(1));
        x[1, 40] = tensor(0f);      // a zero and a negative zero keep their signs in the codes
        x[1, 41] = tensor(-0f);
        using var reference = Quantizer.QuantizePacked(x, spec);
        using var packed = Quantizer.QuantizeStored(x, spec).Stored;
        Assert.Equal(new long[] { 6, 256 }, packed.Codes.shape);
        Assert.Equal(reference.Codes.data<byte>().ToArray(), packed.Codes.data<byte>().ToArray());
        Assert.Equal(reference.Scales.data<byte>().ToArray(), packed.Scales.data<byte>().ToArray());
        Assert.Equal(0, packed.OuterScales.numel());
    }

    [Fact]
    public void MXFP8_of_a_worked_block_stores_E4M3_codes_and_the_round_up_scale()
    {
        // amax 500 > 448: the round-up rule takes s = 1 (448·2 ≥ 500). 500/2 = 250 → E4M3 256 (code 0x78), -3/2 = -1.5
        // (code 0x80 | 0x3C), 0.3/2 = 0.15 → 0.15625 (code 0x22), 2^-12/2 = 2^-13 → 0 (below half the subnormal step).
        var values = new float[32];
        values[0] = 500f; values[1] = -3f; values[2] = 0.3f; values[3] = MathF.ScaleB(1f, -12);
        var x = tensor(values, 1, 32);
        var q = Quantizer.Quantize(x, new QuantSpec(QuantFormat.MXFP8));
        Assert.Equal(new[] { 512f, -3f, 0.3125f, 0f }, q.data<float>().ToArray()[..4]);
        using var packed = Quantizer.QuantizeStored(x, new QuantSpec(QuantFormat.MXFP8)).Stored;
        var codes = packed.Codes.data<byte>().ToArray();
        Assert.Equal(new byte[] { 0x78, 0xBC, 0x22, 0x00 }, codes[..4]);
        Assert.Equal(new byte[] { 128 }, packed.Scales.data<byte>().ToArray());
    }

    [Fact]
    public void MXFP8_values_that_overflowed_to_infinity_unpack_to_the_same_infinity()
    {
        // amax = 1.99·2^127 takes s = 120: 1.99·2^7 rounds to E4M3 256 and 256·2^120 = 2^128 overflows to Inf.
        var values = new float[32];
        values[0] = 1.99f * MathF.ScaleB(1f, 127); values[1] = -values[0]; values[2] = 1f;
        var x = tensor(values, 1, 32);
        var spec = new QuantSpec(QuantFormat.MXFP8);
        var q = Quantizer.Quantize(x, spec);
        Assert.True(float.IsPositiveInfinity(q[0, 0].item<float>()) && float.IsNegativeInfinity(q[0, 1].item<float>()));
        using var packed = Quantizer.QuantizeStored(x, spec).Stored;
        using var reference = Quantizer.QuantizePacked(x, spec);
        Assert.Equal(reference.Codes.data<byte>().ToArray(), packed.Codes.data<byte>().ToArray());
        Assert.Equal(new byte[] { 0x78, 0xF8 }, packed.Codes.data<byte>().ToArray()[..2]);   // ±256: the grid values, whose product overflowed
        QuantizerTestData.AssertBitsEqual(q.data<float>().ToArray(), packed.Dequantize().data<float>().ToArray(), "overflowed block");
    }

    [Theory]
    [InlineData(QuantFormat.MXFP8, 1 + 1.0 / 32)]
    [InlineData(QuantFormat.MXFP4, 0.5 + 1.0 / 32)]
    [InlineData(QuantFormat.NVFP4, 0.5 + 1.0 / 16 + 4.0 / 128)]
    public void Bytes_per_element_are_the_storage_formats(QuantFormat format, double perElement)
    {
        var spec = new QuantSpec(format);
        var x = randn(64, 512);
        using var packed = Quantizer.QuantizeStored(x, spec).Stored;
        Assert.Equal((long)(64 * 512 * perElement), packed.Bytes);
    }
}
