using TetraJet.Formats;
using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using static TetraJet.Runtime.Tests.QuantizerTestData;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests;

/// <summary>Storage formats round-trip exactly, and packed tensors dequantize to the reference's values bit for bit.</summary>
public class PackedTensorTests
{
    [Fact]
    public void All_16_E2M1_codes_round_trip()
    {
        for (int code = 0; code < 16; code++)
        {
            float v = E2M1.Decode(code);
            Assert.Equal(code, E2M1.Encode(v));
            Assert.Equal(BitConverter.SingleToUInt32Bits(v), BitConverter.SingleToUInt32Bits(E2M1.RoundNearest(v)));
        }
        Assert.Equal(new[] { 0f, 0.5f, 1, 1.5f, 2, 3, 4, 6 }, Enumerable.Range(0, 8).Select(E2M1.Decode));
    }

    [Fact]
    public void All_E4M3_bytes_round_trip_except_NaN()
    {
        for (int b = 0; b < 256; b++)
        {
            float v = E4M3.Decode((byte)b);
            if (b is 0x7F or 0xFF) { Assert.True(float.IsNaN(v)); continue; }
            Assert.Equal((byte)b, E4M3.Encode(v));
            Assert.Equal(BitConverter.SingleToUInt32Bits(v), BitConverter.SingleToUInt32Bits(E4M3.Round(v)));
        }
        Assert.Equal(448f, E4M3.Decode(0x7E));
        Assert.Equal(0.001953125f, E4M3.Decode(0x01));
    }

    [Fact]
    public void All_E8M0_scales_round_trip()
    {
        for (int s = E8M0.MinExponent; s <= E8M0.MaxExponent; s++)
        {
            byte code = E8M0.Encode(s);
            Assert.Equal(s + 127, code);
            Assert.Equal(MathF.ScaleB(1f, s), E8M0.Decode(code));
        }
        Assert.True(float.IsNaN(E8M0.Decode(E8M0.NaN)));
    }

    [Fact]
    public void Element_2i_goes_in_the_low_nibble()
    {
        var packed = PackedTensor.Pack([1, 2, 3, 0xF, 0xA], new byte[1], [], 1, 5, BlockAxis.Last, new QuantSpec(QuantFormat.MXFP4), [1, 5]);
        Assert.Equal(new byte[] { 0x21, 0xF3, 0x0A }, packed.Codes.data<byte>().ToArray());
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, 6)]      // MaxValue·2^-126 ≈ 3.99999 → 4 (code 6); 4·2^126 = 2^128 overflows
    [InlineData(QuantFormat.MXFP8, 0x78)]   // MaxValue·2^-120 ≈ 255.99998 → 256 (0x78); 256·2^120 overflows
    public void Codes_are_those_of_the_grid_value_where_the_dequantized_value_overflows(QuantFormat format, int expectedCode)
    {
        // Q(x) = q·2^s is an FP32 product, so it overflows to Inf here (ALGORITHMS.md: all arithmetic in binary32);
        // the stored code must still be q's (§1), so that unpacking reproduces the same Q(x).
        var x = new float[32];
        x[0] = float.MaxValue;
        x[1] = 1f;
        var spec = new QuantSpec(format);
        var y = new float[32];
        var codes = new byte[32];
        var scales = new byte[1];
        ReferenceQuantizer.QuantizePacked(x, y, 1, 32, BlockAxis.Last, spec, codes, scales, [], 0, 0);
        Assert.Equal(float.PositiveInfinity, y[0]);
        Assert.Equal(expectedCode, codes[0]);
        var back = new float[32];
        PackedTensor.Pack(codes, scales, [], 1, 32, BlockAxis.Last, spec).Dequantize(back);
        AssertBitsEqual(y, back, format.ToString());
    }

    public static TheoryData<int, Rounding, BlockAxis, bool> Cases()
    {
        var data = new TheoryData<int, Rounding, BlockAxis, bool>();
        for (int f = 0; f < Specs.Length; f++)
            foreach (var rounding in new[] { Rounding.Nearest, Rounding.Stochastic })
                foreach (var axis in Enum.GetValues<BlockAxis>())
                    foreach (bool pad in new[] { false, true })
                        if (!(Specs[f].Tile16 && pad)) data.Add(f, rounding, axis, pad);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Pack_then_dequantize_equals_the_reference(int format, Rounding rounding, BlockAxis axis, bool pad)
    {
        var spec = Specs[format] with { Rounding = rounding };
        var rng = new Random(format * 100 + (int)rounding * 10 + (int)axis * 2 + (pad ? 1 : 0));
        for (int t = 0; t < 4; t++)
        {
            int len = pad ? rng.Next(1, 300) : spec.FeatureMultiple * rng.Next(1, 4), other = rng.Next(1, 40);
            if (spec.Tile16) { len = (len + 15) / 16 * 16; other = (other + 15) / 16 * 16; }
            var (rows, cols) = axis == BlockAxis.Last ? (other, len) : (len, other);
            var x = Tensor(rng, rows, cols, nonFinite: t == 3);
            var y = new float[x.Length];
            var codes = new byte[x.Length];
            var scales = new byte[PackedTensor.ScaleCount(rows, cols, axis, spec)];
            var outer = new float[PackedTensor.OuterCount(rows, cols, axis, spec)];
            ReferenceQuantizer.QuantizePacked(x, y, rows, cols, axis, spec, codes, scales, outer, 8, 9, default, pad);
            var packed = PackedTensor.Pack(codes, scales, outer, rows, cols, axis, spec);
            Assert.Equal(PackedTensor.CodeBytes(spec, x.Length), packed.Codes.numel());
            var back = new float[x.Length];
            packed.Dequantize(back);
            AssertBitsEqual(y, back, $"{spec} {axis} pad {pad} [{rows}, {cols}]");
        }
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, ScalarType.Float32)]
    [InlineData(QuantFormat.NVFP4, ScalarType.BFloat16)]
    [InlineData(QuantFormat.MXFP8, ScalarType.Float32)]
    public void Tensor_api_packed_dequantize_equals_quantize(QuantFormat format, ScalarType dtype)
    {
        var rng = new Random(31);
        using var x = tensor(Tensor(rng, 8 * 16, 256, nonFinite: false), 8, 16, 256).to(dtype);
        var spec = new QuantSpec(format, Rounding.Stochastic);
        var packed = Quantizer.QuantizePacked(x, spec, BlockAxis.Last, 1, 2);
        using var back = packed.Dequantize();
        using var direct = Quantizer.Quantize(x, spec, BlockAxis.Last, 1, 2);
        Assert.Equal(x.shape, back.shape);
        Assert.Equal(dtype, back.dtype);
        using var b32 = back.to(ScalarType.Float32).contiguous();
        using var d32 = direct.to(ScalarType.Float32).contiguous();
        AssertBitsEqual(TensorMemory.Floats(d32).ToArray(), TensorMemory.Floats(b32).ToArray(), "tensor api");
        Assert.Equal(format == QuantFormat.MXFP8 ? x.numel() : x.numel() / 2, packed.Codes.numel());
    }
}
