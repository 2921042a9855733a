using ILGPU;
using ILGPU.Runtime;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>The kernel-side rewrites of reference steps, checked against the originals.</summary>
[Collection("cpu accelerator")]
public class KernelMathTests(CpuAcceleratorFixture fixture)
{
    static void Hadamard16Kernel(ArrayView<float> x, uint signs) => KernelMath.Hadamard16(x.SubView(Grid.IdxX * 16, 16), signs);

    static void Hadamard4LanesKernel(ArrayView<float> x, uint signs)
    {
        int lane = Group.IdxX;
        float v0 = x[lane * 4], v1 = x[lane * 4 + 1], v2 = x[lane * 4 + 2], v3 = x[lane * 4 + 3];
        KernelMath.Hadamard4Lanes(ref v0, ref v1, ref v2, ref v3, lane & 3, signs);
        x[lane * 4] = v0; x[lane * 4 + 1] = v1; x[lane * 4 + 2] = v2; x[lane * 4 + 3] = v3;
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0xB4D2u)]
    [InlineData(0xFFFFu)]
    public void Both_kernel_RHT_forms_match_Hadamard_Transform16(uint signs)
    {
        var rng = new Random((int)signs);
        var x = Enumerable.Range(0, 128).Select(_ => (float)(rng.NextDouble() * 20 - 10) * MathF.Pow(2, rng.Next(-20, 20))).ToArray();
        var expected = (float[])x.Clone();
        for (int b = 0; b < 128; b += 16) Hadamard.Transform16(expected.AsSpan(b, 16), signs);

        var acc = fixture.Accelerator;
        using var buf = acc.Allocate1D(x);
        acc.LoadStreamKernel<ArrayView<float>, uint>(Hadamard16Kernel)(new KernelConfig(8, 1), buf.View, signs);
        acc.Synchronize();
        GpuTestData.AssertBitsEqual(expected, buf.GetAsArray1D(), "Hadamard16");

        using var buf2 = acc.Allocate1D(x);
        acc.LoadStreamKernel<ArrayView<float>, uint>(Hadamard4LanesKernel)(new KernelConfig(1, 32), buf2.View, signs);
        acc.Synchronize();
        GpuTestData.AssertBitsEqual(expected, buf2.GetAsArray1D(), "Hadamard4Lanes");
    }

    static void Hadamard2LanesKernel(ArrayView<float> x, uint signs)
    {
        int lane = Group.IdxX;
        var v = default(F32Io).Load8(x, lane * 8);
        default(F32Io).Store8(x, lane * 8, KernelMath.Hadamard2Lanes(v, (lane & 1) != 0, signs));
    }

    static void Hadamard16RegistersKernel(ArrayView<float> x, uint signs)
    {
        int at = Grid.IdxX * 16;
        Vec8 lo = default(F32Io).Load8(x, at), hi = default(F32Io).Load8(x, at + 8);
        KernelMath.Hadamard16(ref lo, ref hi, signs);
        default(F32Io).Store8(x, at, lo);
        default(F32Io).Store8(x, at + 8, hi);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0xB4D2u)]
    [InlineData(0xFFFFu)]
    public void Eight_element_RHT_forms_match_Hadamard_Transform16(uint signs)
    {
        var rng = new Random((int)signs + 1);
        var x = Enumerable.Range(0, 256).Select(_ => (float)(rng.NextDouble() * 20 - 10) * MathF.Pow(2, rng.Next(-20, 20))).ToArray();
        var expected = (float[])x.Clone();
        for (int b = 0; b < 256; b += 16) Hadamard.Transform16(expected.AsSpan(b, 16), signs);

        var acc = fixture.Accelerator;
        using var buf = acc.Allocate1D(x);
        acc.LoadStreamKernel<ArrayView<float>, uint>(Hadamard2LanesKernel)(new KernelConfig(1, 32), buf.View, signs);
        acc.Synchronize();
        GpuTestData.AssertBitsEqual(expected, buf.GetAsArray1D(), "Hadamard2Lanes");

        using var buf2 = acc.Allocate1D(x);
        acc.LoadStreamKernel<ArrayView<float>, uint>(Hadamard16RegistersKernel)(new KernelConfig(16, 1), buf2.View, signs);
        acc.Synchronize();
        GpuTestData.AssertBitsEqual(expected, buf2.GetAsArray1D(), "Hadamard16 in registers");
    }

    /// <summary>The old form of the kernels' block exponent: the reference rule on amax, the minimum for zero and non-finite blocks.</summary>
    static int ReferenceExponent(uint amax, bool fp8, ScaleRule rule) =>
        amax == 0 || amax >= KernelMath.NonFiniteBits ? Formats.E8M0.MinExponent : ScalarCore.MxExponent(BitConverter.UInt32BitsToSingle(amax), fp8, rule);

    [Fact]
    public void Branch_free_block_exponent_matches_every_rule_on_every_binade()
    {
        // Every biased exponent with the fractions at and around each rule's threshold, every subnormal stride, zero,
        // the non-finite patterns, and random bits.
        uint[] fractions = [0, 1, 2, 0x1FFFFF, 0x200000, 0x200001, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF, 0x600000, 0x600001, 0x7FFFFE, 0x7FFFFF];
        var amax = new List<uint>();
        for (uint e = 0; e < 256; e++)
            foreach (uint f in fractions) amax.Add(e << 23 | f);
        for (uint b = 0; b < 0x800000; b += 4093) amax.Add(b);
        var rng = new Random(5);
        for (int k = 0; k < 200000; k++) amax.Add((uint)rng.Next() & 0x7FFFFFFFu);
        amax.Add(0x7FFFFFFFu);
        foreach (uint a in amax)
        {
            Assert.Equal(ReferenceExponent(a, false, ScaleRule.TetraJet), BlockMath.MxExponent<Mxfp4TetraJet>(a));
            Assert.Equal(ReferenceExponent(a, false, ScaleRule.Ocp), BlockMath.MxExponent<Mxfp4Ocp>(a));
            Assert.Equal(ReferenceExponent(a, true, ScaleRule.TetraJet), BlockMath.MxExponent<Mxfp8>(a));
        }
    }

    /// <summary>Scaled values an E2M1 rounding meets: every tie and grid point ± 1 ulp, saturation, subnormals, zeros, random magnitudes.</summary>
    static IEnumerable<float> RoundingInputs()
    {
        var rng = new Random(7);
        float[] points = [0f, 0.25f, 0.5f, 0.75f, 1f, 1.25f, 1.5f, 1.75f, 2f, 2.5f, 3f, 3.5f, 4f, 5f, 6f, 7f, 8f, 1e30f, float.PositiveInfinity, 1e-45f, 1e-40f, 1.1754942E-38f];
        foreach (float p in points)
            foreach (int d in new[] { -2, -1, 0, 1, 2 })
            {
                uint b = BitConverter.SingleToUInt32Bits(p);
                if ((long)b + d < 0 || p == float.PositiveInfinity && d > 0) continue;
                float v = BitConverter.UInt32BitsToSingle((uint)((long)b + d));
                yield return v;
                yield return -v;
            }
        for (int k = 0; k < 20000; k++)
        {
            float v = (float)(rng.NextDouble() * 7) * (rng.Next(2) == 0 ? 1 : -1);
            yield return k % 5 == 0 ? v * MathF.Pow(2, rng.Next(-30, 4)) : v;
        }
    }

    static readonly float[] E2M1Grid = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];

    [Fact]
    public void Branch_free_E2M1_rounding_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(11);
        int n = 0;
        foreach (float v in RoundingInputs())
        {
            float u = (rng.Next(1 << 24)) * (1f / 16777216f);
            float e = (float)(rng.NextDouble() * 14 - 7);
            Assert.Equal(BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundNearest(v)), BitConverter.SingleToUInt32Bits(Fp4Grid.Nearest(v)));
            AssertStochastic(v, u);
            Assert.Equal(BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundEmaGuided(v, e)), BitConverter.SingleToUInt32Bits(Fp4Grid.EmaGuided(v, e)));
            // SR at the edges of its threshold: u just below and at p.
            AssertStochastic(v, 0f);
            AssertStochastic(v, 0.99999994f);
            // And at the threshold itself, p = (a − lo)/(hi − lo) from the grid, and one step of u below it.
            float a = Math.Min(Math.Abs(v), 6f);
            int j = Array.FindLastIndex(E2M1Grid, g => g <= a);
            if (j < E2M1Grid.Length - 1)
            {
                float p = (a - E2M1Grid[j]) / (E2M1Grid[j + 1] - E2M1Grid[j]);
                foreach (float up in new[] { p, p - 1f / 16777216f })
                    if (up >= 0)
                        AssertStochastic(v, up);
            }
            n++;
        }
        Assert.True(n > 20000);
    }

    /// <summary>
    /// SR as the CPU accelerator runs it (the bracket) and as CUDA does (the ceiling steps, rounding up emulated), against
    /// the reference; the kernels take the uniform as ticks, u·2^24.
    /// </summary>
    static void AssertStochastic(float v, float u)
    {
        uint expected = BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundStochastic(v, u));
        float ticks = u * KernelMath.TicksPerUnit;
        Assert.Equal(expected, BitConverter.SingleToUInt32Bits(Fp4Grid.Stochastic(v, ticks)));
        Assert.Equal(expected, BitConverter.SingleToUInt32Bits(Fp4Grid.StochasticSteps<DotNetRoundUp>(v, ticks)));
    }

    [Fact]
    public void Branch_free_E2M1_rounding_matches_the_reference_for_every_float_below_8()
    {
        // Every non-negative float below 8 (past 6 all saturate alike; the sign is carried over after the rounding): RNE,
        // and SR at a uniform taken from the value's low bits and at the largest uniform.
        long mismatches = 0;
        Parallel.For(0, 0x41000000 >> 20, hi =>
        {
            long local = 0;
            for (uint bits = (uint)hi << 20, end = bits + (1u << 20); bits < end; bits++)
            {
                // The uniform from the value's low bits, as the kernels hold it (ticks, u·2^24) and as the reference takes it.
                float v = BitConverter.UInt32BitsToSingle(bits), ticks = bits & 0xFFFFFFu, u = ticks * (1f / 16777216f);
                if (BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundNearest(v)) != BitConverter.SingleToUInt32Bits(Fp4Grid.Nearest(v))) local++;
                if (BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundStochastic(v, u)) != BitConverter.SingleToUInt32Bits(Fp4Grid.Stochastic(v, ticks))) local++;
                if (BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundStochastic(v, 0.99999994f)) != BitConverter.SingleToUInt32Bits(Fp4Grid.Stochastic(v, 16777215f))) local++;
                // CUDA's ceiling steps (rounding up emulated), at the same uniform.
                if (BitConverter.SingleToUInt32Bits(Formats.E2M1.RoundStochastic(v, u)) != BitConverter.SingleToUInt32Bits(Fp4Grid.StochasticSteps<DotNetRoundUp>(v, ticks))) local++;
            }
            Interlocked.Add(ref mismatches, local);
        });
        Assert.Equal(0, mismatches);
    }

    [Fact]
    public void E2M1_codes_encode_and_decode_like_the_reference()
    {
        for (int code = 0; code < 16; code++)
        {
            float g = Formats.E2M1.Decode(code);
            Assert.Equal(BitConverter.SingleToUInt32Bits(g), BitConverter.SingleToUInt32Bits(Fp4Grid.Decode((uint)code | 0xABC0u)));
            Assert.Equal((uint)Formats.E2M1.Encode(g), BlockMath.Fp4Codes(new Vec8 { V0 = g }, false) & 0xFu);
        }
    }

    [Fact]
    public void Fp8_operand_codes_are_the_E4M3_codes_of_the_scaled_grid_values()
    {
        for (int code = 0; code < 16; code++)
            for (int shift = -8; shift <= 6; shift++)
            {
                float g = Formats.E2M1.Decode(code);
                float w = g * MathF.Pow(2, shift);
                uint c8 = Fp8Operand.Code(g, shift);
                Assert.Equal((uint)Formats.E4M3.Encode(w), c8);
                // Exact: the code's value is the scaled grid value itself.
                Assert.Equal(BitConverter.SingleToUInt32Bits(w), BitConverter.SingleToUInt32Bits(Fp8Operand.Value(c8)));
            }
        // Below the bound the element is a signed zero (its row is flagged); every E4M3 code decodes as the reference decodes it.
        Assert.Equal(0x80u, Fp8Operand.Code(-6f, -9));
        Assert.Equal(0u, Fp8Operand.Code(6f, -20));
        for (int code = 0; code < 256; code++)
        {
            float a = Formats.E4M3.Decode((byte)code), b = Fp8Operand.Value((uint)code);
            if (float.IsNaN(a)) Assert.True(float.IsNaN(b), $"code 0x{code:X2}");
            else Assert.Equal(BitConverter.SingleToUInt32Bits(a), BitConverter.SingleToUInt32Bits(b));
        }
    }

    static readonly float[] Scales = [1f, MathF.Pow(2, -127), MathF.Pow(2, 127), 0.0123f * 448f, 3e-39f, float.NaN, 0f];

    [Fact]
    public void Fp8_codes_and_fp4_codes_by_conversion_match_the_reference_for_every_nibble_and_shift()
    {
        // Words that put every code (signs and zeros included) at every nibble, then random ones.
        var words = new List<uint>();
        for (uint c = 0; c < 16; c++)
            for (int at = 0; at < 8; at++) words.Add(c << (4 * at) | 0x76543210u & ~(0xFu << (4 * at)));
        var rng = new Random(11);
        for (int k = 0; k < 2000; k++) words.Add((uint)rng.NextInt64(0, 1L << 32));
        foreach (uint word in words)
        {
            var g = new Vec8
            {
                V0 = Fp4Grid.Decode(word), V1 = Fp4Grid.Decode(word >> 4), V2 = Fp4Grid.Decode(word >> 8), V3 = Fp4Grid.Decode(word >> 12),
                V4 = Fp4Grid.Decode(word >> 16), V5 = Fp4Grid.Decode(word >> 20), V6 = Fp4Grid.Decode(word >> 24), V7 = Fp4Grid.Decode(word >> 28),
            };
            Assert.Equal(word, Fp8Operand.Fp4Codes(g, false));
            Assert.Equal(word, BlockMath.Fp4Codes(g, false));
            // And back, times a scale (the storage kernels' decode): E8M0 extremes, an NVFP4 product, NaN.
            foreach (float scale in Scales)
            {
                Vec8 d = Fp4Grid.Decode8(word, scale);
                float[] got = [d.V0, d.V1, d.V2, d.V3, d.V4, d.V5, d.V6, d.V7];
                for (int e = 0; e < 8; e++)
                    Assert.Equal(BitConverter.SingleToUInt32Bits(Formats.E2M1.Decode((int)(word >> (4 * e) & 15u)) * scale), BitConverter.SingleToUInt32Bits(got[e]));
            }
            // shift = s − sMax + 6 from 6 (the group's largest block) down past the bound (−8) to zeros.
            for (int span = 0; span <= 20; span++)
            {
                int sMax = 3, s = sMax - span, shift = s - sMax + 6;
                ulong expected = 0;
                for (int e = 0; e < 8; e++)
                {
                    float v = Formats.E2M1.Decode((int)(word >> (4 * e) & 15u));
                    uint code = shift < -8 ? (BitConverter.SingleToUInt32Bits(v) >> 24) & 0x80u : (uint)Formats.E4M3.Encode(v * MathF.Pow(2, shift));
                    expected |= (ulong)code << (8 * e);
                }
                Assert.Equal(expected, Fp8Operand.Codes(g, 1u, s, sMax));
            }
        }
        // Four values into one word, element k in byte k (signed zeros and subnormals included).
        Assert.Equal(0x80C8_2838u, Fp8Operand.Pack4(1f, 0.25f, -4f, -0f));
        Assert.Equal(0x0001_7C4Cu, Fp8Operand.Pack4(6f, 384f, MathF.Pow(2, -9), 0f));
        // A NaN (an element whose code its caller replaces) leaves its neighbours' bytes alone.
        Assert.Equal(0x3838_3800u, Fp8Operand.Pack4(float.NaN, 1f, 1f, 1f) & 0xFFFFFF00u);
        // Zero and non-finite blocks whatever the codes.
        Assert.Equal(0ul, Fp8Operand.Codes(new Vec8 { V0 = 1f, V7 = -6f }, 0u, -127, 0));
        Assert.Equal(0x7F7F7F7F7F7F7F7Ful, Fp8Operand.Codes(new Vec8 { V0 = 1f, V7 = -6f }, 0x7F800000u, -127, 0));
        Assert.Equal(0u, Fp8Operand.Fp4Codes(new Vec8 { V0 = 6f, V1 = -0.5f }, true));
    }

    [Fact]
    public void Every_mxfp4_value_is_a_bfloat16_value_so_stored_mx_operands_skip_the_rounding()
    {
        // ColumnTiles.Held: every E2M1 value times every E8M0 scale, as FP32 (the largest overflow to infinity, which
        // bfloat16's rounding keeps), narrows to bfloat16 and back unchanged.
        for (int s = -127; s <= 127; s++)
            for (int code = 0; code < 16; code++)
            {
                float v = Fp4Grid.Decode((uint)code) * Formats.E8M0.Decode((byte)(s + 127));
                Assert.True(BitConverter.SingleToUInt32Bits(v) == BitConverter.SingleToUInt32Bits(Bf16.Widen(Bf16.Narrow(v))), $"code {code}, s {s}: {v}");
            }
    }

    [Fact]
    public void Branch_free_E4M3_rounding_matches_E4M3_Round_on_non_negative_floats()
    {
        // Every 101st bit pattern from +0 to +Inf; every normal-range tie (the fraction's bits below E4M3's three exactly
        // half a step, with the kept bit 0 and 1) and its neighbours; every subnormal-range tie (k + 1/2)·2^-9 and its
        // neighbours; then the subnormal/normal edge, 448 and its neighbours, the largest finite value, NaNs.
        var bits = new List<uint>();
        for (ulong b = 0; b <= 0x7F800000u; b += 101) bits.Add((uint)b);
        for (uint e = 1; e < 255; e++)
            for (uint m = 0; m < 8; m++)
            {
                uint tie = e << 23 | m << 20 | 0x80000u;
                bits.AddRange([tie - 1, tie, tie + 1]);
            }
        for (int k = 0; k < 8; k++)
        {
            uint tie = BitConverter.SingleToUInt32Bits((k + 0.5f) / 512f);
            bits.AddRange([tie - 1, tie, tie + 1]);
        }
        bits.AddRange([0x3C7FFFFFu, 0x3C800000u, 0x3C800001u, 0x43DFFFFFu, 0x43E00000u, 0x43E00001u, 0x43EFFFFFu, 0x43F00000u,
            0x7F7FFFFFu, 0x7F800000u, 0x7FC00000u, 0x7F800001u, 0x3B000000u, 0x3A800000u, 0x3A800001u]);
        foreach (uint b in bits)
        {
            float a = BitConverter.UInt32BitsToSingle(b), expected = Formats.E4M3.Round(a), actual = Formats.E4M3.RoundMagnitude(a);
            if (float.IsNaN(expected) && float.IsNaN(actual)) continue;
            if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(actual))
                Assert.Fail($"0x{b:X8} ({a:R}): expected {expected:R}, got {actual:R}");
        }
    }

    [Fact]
    public void Bf16_narrowing_matches_torch()
    {
        var rng = new Random(1);
        var bits = Enumerable.Range(0, 4096).Select(_ => (uint)rng.NextInt64(0, 1L << 32)).ToList();
        bits.AddRange([0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0x00008000u, 0x80018000u]);
        var x = bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
        using var t = tensor(x).to(ScalarType.BFloat16);
        // Widening bf16 to float32 is exact, so the high half of the float bits is the bf16 pattern.
        var torchBits = t.to(ScalarType.Float32).data<float>().ToArray().Select(f => (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16)).ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            ushort mine = Bf16.Narrow(x[i]), theirs = torchBits[i];
            if (float.IsNaN(x[i])) Assert.True((theirs & 0x7FFF) > 0x7F80 && (mine & 0x7FFF) > 0x7F80);
            else Assert.Equal(theirs, mine);
        }
    }
}
