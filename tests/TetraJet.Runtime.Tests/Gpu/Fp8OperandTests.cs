using TetraJet.Formats;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TetraJet.Quantization.Reference;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The FP8 GEMM operand kernels on ILGPU's CPU accelerator against the reference quantizer: every element of every
/// unflagged row is exactly code × group scale of the reference's value; the flags are exactly the rows (or, transposed,
/// the columns) whose 128-group spans more than 14 binades; side copies are the reference's values; storage bytes the
/// reference's; NaN blocks give NaN codes; zero groups zero codes and scale 1.
/// </summary>
[Collection("cpu accelerator")]
public class Fp8OperandTests(CpuAcceleratorFixture fixture)
{
    const ulong Seed = 42, Stream = 9;

    /// <summary>
    /// Adversarial data with the group spans of <see cref="Fp8SelfCheck.Plant"/> planted along its lines (rows for the
    /// last axis, columns for the first): line 1 spans 30 binades in each of its groups, line 3 exactly 14 (exact), line 4
    /// exactly 15 (flagged), line 2 a NaN block beside a span of 12 (not flagged), line 5 a whole zero group.
    /// </summary>
    static float[] Planted(int rows, int cols, bool lastAxis, int seed)
    {
        var x = GpuTestData.Adversarial(rows, cols, seed);
        // The adversarial generator's zero and subnormal runs make their own spans; keep them, and plant the rest.
        Fp8SelfCheck.Plant(x, rows, cols, lastAxis);
        return x;
    }

    /// <summary>The lines (rows for the last axis, columns for the first) with a 128-group whose live block exponents span more than 14.</summary>
    static SortedSet<int> ExpectedBroken(float[] x, int rows, int cols, bool lastAxis, QuantSpec spec)
    {
        var broken = new SortedSet<int>();
        int lines = lastAxis ? rows : cols, len = lastAxis ? cols : rows;
        for (int line = 0; line < lines; line++)
            for (int g = 0; g < len; g += 128)
            {
                int hi = int.MinValue, lo = int.MaxValue;
                for (int b = g; b < Math.Min(g + 128, len); b += 32)
                {
                    float amax = 0; bool bad = false;
                    for (int k = b; k < Math.Min(b + 32, len); k++)
                    {
                        float v = x[lastAxis ? line * cols + k : k * cols + line];
                        if (!float.IsFinite(v)) bad = true;
                        else amax = Math.Max(amax, Math.Abs(v));
                    }
                    if (bad || amax == 0) continue;
                    int s = ScalarCore.MxExponent(amax, false, spec.ScaleRule);
                    hi = Math.Max(hi, s);
                    lo = Math.Min(lo, s);
                }
                if (hi != int.MinValue && hi - lo > Fp8Operand.MaxSpan) broken.Add(line);
            }
        return broken;
    }

    static void AssertSame(float expected, float actual, string what)
    {
        if (float.IsNaN(expected) && float.IsNaN(actual)) return;
        if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(actual))
            Assert.Fail($"{what}: expected {expected:R} (0x{BitConverter.SingleToUInt32Bits(expected):X8}), got {actual:R} (0x{BitConverter.SingleToUInt32Bits(actual):X8})");
    }

    /// <summary>
    /// Checks an operand [lines, length] (codes8 line-major, scales8 group-major [length/128][lines]) against the reference
    /// values ref(line, pos): codes × scale for unflagged lines, the side copy for flagged ones, NaN and zero codes.
    /// </summary>
    static void AssertOperand<T>(Fp8Result<T> r, Func<int, int, float> reference, Func<T, float> widen, SortedSet<int> broken, string what) where T : unmanaged
    {
        Assert.Equal(broken, new SortedSet<int>(r.Flags));
        Assert.True(r.Flags.Length == broken.Count, $"{what}: {r.Flags.Length} entries for {broken.Count} flagged lines (each is listed once)");
        for (int line = 0; line < r.Rows; line++)
        {
            bool flagged = broken.Contains(line);
            for (int pos = 0; pos < r.Length; pos++)
            {
                float q = reference(line, pos);
                byte code = r.Codes8[line * r.Length + pos];
                float scale = r.Scales8[pos / 128 * r.Rows + line];
                float side = widen(r.Side[line * r.Length + pos]);
                if (flagged) AssertSame(q, side, $"{what} side [{line}, {pos}]");
                else
                {
                    AssertSame(q, E4M3.Decode(code) * scale, $"{what} code 0x{code:X2} × {scale:R} at [{line}, {pos}]");
                    Assert.True(side == 0 && !float.IsNegative(side), $"{what}: side written for unflagged line {line}");
                }
                if (float.IsNaN(q)) Assert.Equal(Fp8Operand.NaNCode, code);
            }
        }
    }

    /// <summary>Line 5's first group is planted all zero: scale 1 and +0 codes.</summary>
    static void AssertZeroGroup<T>(Fp8Result<T> r) where T : unmanaged
    {
        if (r.Rows <= 5) return;
        Assert.Equal(1f, r.Scales8[5]);
        for (int pos = 0; pos < Math.Min(128, r.Length); pos++) Assert.Equal(0, r.Codes8[5 * r.Length + pos]);
    }

    public static TheoryData<ScaleRule, Rounding, int, int> RowCases() => new()
    {
        { ScaleRule.TetraJet, Rounding.Nearest, 7, 256 },
        { ScaleRule.TetraJet, Rounding.Stochastic, 7, 384 },
        { ScaleRule.TetraJet, Rounding.EmaGuided, 6, 256 },
        { ScaleRule.Ocp, Rounding.Nearest, 7, 160 },          // a partial last group (32 of 128)
        { ScaleRule.Ocp, Rounding.Stochastic, 9, 96 },         // one partial group, a warp partly past the row
        { ScaleRule.TetraJet, Rounding.Stochastic, 6, 192 },
    };

    [Theory]
    [MemberData(nameof(RowCases))]
    public void Rows_write_exact_codes_flags_side_copies_and_storage(ScaleRule rule, Rounding rounding, int rows, int cols)
    {
        var spec = new QuantSpec(QuantFormat.MXFP4, rounding, rule);
        var x = Planted(rows, cols, true, rows * cols);
        var ema = rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 4) : null;
        var q = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, Seed, Stream, ema, false, false);
        var broken = ExpectedBroken(x, rows, cols, true, spec);
        Assert.Contains(1, broken);
        Assert.Contains(4, broken);
        Assert.DoesNotContain(2, broken);
        Assert.DoesNotContain(3, broken);

        var r = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, x, rows, cols, store: true, Seed, Stream, ema);
        AssertOperand(r, (line, pos) => q[line * cols + pos], v => v, broken, $"{spec} rows");
        AssertZeroGroup(r);
        using var packed = Quantizer.QuantizePacked(tensor(x, rows, cols), spec, BlockAxis.Last, Seed, Stream, ema is null ? null : tensor(ema, rows, cols));
        Assert.Equal(packed.Codes.data<byte>().ToArray(), r.Codes);
        Assert.Equal(packed.Scales.data<byte>().ToArray(), r.Scales);

        // bfloat16 input: the reference runs on the widened values (MXFP4 values are exact in bfloat16).
        var xb = GpuTestData.ToBf16(x);
        var qb = GpuTestData.Reference(GpuTestData.FromBf16(xb), rows, cols, BlockAxis.Last, spec, Seed, Stream, ema, false, false);
        var rb = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, xb, rows, cols, store: false, Seed, Stream, ema);
        AssertOperand(rb, (line, pos) => qb[line * cols + pos], Bf16.Widen, ExpectedBroken(GpuTestData.FromBf16(xb), rows, cols, true, spec), $"{spec} rows bf16");
    }

    [Theory]
    [InlineData(ScaleRule.TetraJet, Rounding.Stochastic, 200, 64)]     // padded to 256
    [InlineData(ScaleRule.TetraJet, Rounding.Nearest, 128, 40)]        // a tile partly past the columns
    [InlineData(ScaleRule.TetraJet, Rounding.Stochastic, 128, 38)]     // cols not a multiple of 4: element accesses, a Philox block per element
    [InlineData(ScaleRule.Ocp, Rounding.Stochastic, 70, 96)]
    [InlineData(ScaleRule.TetraJet, Rounding.EmaGuided, 130, 72)]
    public void Columns_write_the_transposed_operand(ScaleRule rule, Rounding rounding, int rows, int cols)
    {
        var spec = new QuantSpec(QuantFormat.MXFP4, rounding, rule);
        var x = Planted(rows, cols, false, rows + cols);
        var ema = rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 4) : null;
        var q = GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, Seed, Stream, ema, true, false);
        var broken = ExpectedBroken(x, rows, cols, false, spec);
        Assert.Contains(1, broken);

        var r = GpuQuantizer.Fp8Columns(fixture.Accelerator, spec, x, rows, cols, Seed, Stream, ema);
        Assert.Equal(GpuQuantizer.PaddedRows(rows), r.Length);
        AssertOperand(r, (col, row) => row < rows ? q[row * cols + col] : 0f, v => v, broken, $"{spec} columns");
        AssertZeroGroup(r);

        var xb = GpuTestData.ToBf16(x);
        var qb = GpuTestData.Reference(GpuTestData.FromBf16(xb), rows, cols, BlockAxis.First, spec, Seed, Stream, ema, true, false);
        var rb = GpuQuantizer.Fp8Columns(fixture.Accelerator, spec, xb, rows, cols, Seed, Stream, ema);
        AssertOperand(rb, (col, row) => row < rows ? qb[row * cols + col] : 0f, Bf16.Widen, ExpectedBroken(GpuTestData.FromBf16(xb), rows, cols, false, spec), $"{spec} columns bf16");
    }

    [Theory]
    [InlineData(ScaleRule.TetraJet, Rounding.Stochastic, 150, 96)]
    [InlineData(ScaleRule.Ocp, Rounding.Nearest, 128, 64)]
    public void Columns_from_MXFP4_storage_requantize_the_stored_values(ScaleRule rule, Rounding rounding, int rows, int cols)
    {
        var source = new QuantSpec(QuantFormat.MXFP4);
        var target = new QuantSpec(QuantFormat.MXFP4, rounding, rule);
        // Stored values with spans along the first axis: the planted columns survive the forward quantizer (one block per value).
        var x = Planted(rows, cols, false, 3 * rows);
        // Rows 64–95 scaled by 2^-30 keep that scale through the forward quantizer (its blocks run along the rows): spans of ~30 down every column.
        for (int row = 64; row < 96; row++)
            for (int c = 0; c < cols; c++) x[row * cols + c] *= MathF.Pow(2, -30);
        using var packed = Quantizer.QuantizePacked(tensor(x, rows, cols), source);
        var stored = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, source, 0, 0, null, false, false);
        var q = GpuTestData.Reference(stored, rows, cols, BlockAxis.First, target, Seed, Stream, null, true, false);
        var broken = ExpectedBroken(stored, rows, cols, false, target);
        Assert.NotEmpty(broken);

        var r = GpuQuantizer.Fp8StoredColumns<float>(fixture.Accelerator, source, target, packed.Codes.data<byte>().ToArray(), packed.Scales.data<byte>().ToArray(),
            rows, cols, Seed, Stream);
        AssertOperand(r, (col, row) => row < rows ? q[row * cols + col] : 0f, v => v, broken, $"{target} from storage");
    }

    [Theory]
    [InlineData(Rounding.Stochastic, 200, 256)]
    [InlineData(Rounding.Stochastic, 64, 160)]     // a partial Q3 group and a region whose right half is past N
    [InlineData(Rounding.Nearest, 130, 96)]
    public void Fused_dY_writes_both_operands_from_one_read(Rounding rounding, int rows, int cols)
    {
        var spec = new QuantSpec(QuantFormat.MXFP4, rounding);
        var x = Planted(rows, cols, true, rows * 3 + cols);
        // Plant a broken column as well (along T).
        for (int r = 0; r < 32; r++) x[r * cols + 7] = MathF.Pow(2, 18) * ((r % 5) - 2);
        for (int r = 32; r < 64; r++) x[r * cols + 7] = MathF.Pow(2, -9) * ((r % 3) - 1);
        const ulong s3 = 21, s5 = 22;
        var q3 = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, Seed, s3, null, false, false);
        var q5 = GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, Seed, s5, null, true, false);

        var (r3, r5) = GpuQuantizer.Fp8Dual(fixture.Accelerator, spec, x, rows, cols, Seed, s3, s5);
        AssertOperand(r3, (line, pos) => q3[line * cols + pos], v => v, ExpectedBroken(x, rows, cols, true, spec), "Q3");
        var broken5 = ExpectedBroken(x, rows, cols, false, spec);
        Assert.Contains(7, broken5);
        AssertOperand(r5, (col, row) => row < rows ? q5[row * cols + col] : 0f, v => v, broken5, "Q5");
    }

    /// <summary>The kernel's summation order on the host: lane L sums elements 4L … 4L + 3 of every 128 in order, then a butterfly.</summary>
    static float KernelOrderDot(Func<int, float> a, Func<int, float> b, int k)
    {
        var lanes = new float[32];
        for (int lane = 0; lane < 32; lane++)
            for (int k0 = lane * 4; k0 < k; k0 += 128)
                for (int q = 0; q < 4 && k0 + q < k; q++) lanes[lane] += a(k0 + q) * b(k0 + q);
        for (int h = 16; h >= 1; h >>= 1)
        {
            var next = new float[32];
            for (int lane = 0; lane < 32; lane++) next[lane] = lanes[lane] + lanes[lane ^ h];
            lanes = next;
        }
        return lanes[0];
    }

    [Fact]
    public void Patch_recomputes_flagged_rows_and_columns_exactly_and_leaves_the_rest()
    {
        const int m = 9, n = 6, k = 384;
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest);
        var xa = Planted(m, k, true, 5);
        var xb = Planted(n, k, true, 6);
        var a = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, xa, m, k);
        var b = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, xb, n, k);
        Assert.NotEmpty(a.Flags);
        Assert.NotEmpty(b.Flags);
        var qa = GpuTestData.Reference(xa, m, k, BlockAxis.Last, spec, 0, 0, null, false, false);
        var qb = GpuTestData.Reference(xb, n, k, BlockAxis.Last, spec, 0, 0, null, false, false);

        var d0 = Enumerable.Range(0, m * n).Select(i => (float)i + 0.5f).ToArray();
        var d = GpuQuantizer.Fp8Patch(fixture.Accelerator, a, b, d0, k);
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++)
            {
                float got = d[r * n + j];
                if (!a.Flags.Contains(r) && !b.Flags.Contains(j)) { Assert.Equal(d0[r * n + j], got); continue; }
                float expected = KernelOrderDot(p => qa[r * k + p], p => qb[j * k + p], k);
                AssertSame(expected, got, $"D[{r}, {j}]");
                if (float.IsNaN(expected)) continue;
                // And that order is an FP32 dot product: within k·2^-24·Σ|a·b| of the exact (FP64) one.
                double exact = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    exact += (double)qa[r * k + p] * qb[j * k + p];
                    magnitude += Math.Abs((double)qa[r * k + p] * qb[j * k + p]);
                }
                Assert.True(Math.Abs(got - exact) <= k * Math.Pow(2, -24) * magnitude, $"D[{r}, {j}] = {got} vs exact {exact}");
            }

        // No flags: the kernel exits at once and D is untouched.
        var none = GpuQuantizer.Fp8Patch(fixture.Accelerator, a with { Flags = [] }, b with { Flags = [] }, d0, k);
        Assert.Equal(d0, none);
    }

    [Fact]
    public void Patch_adds_the_bias_before_its_one_rounding_and_counts_the_flags()
    {
        const int m = 9, n = 6, k = 256;
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest);
        var xa = Planted(m, k, true, 7);
        var xb = Planted(n, k, true, 8);
        var a = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, xa, m, k);
        var b = GpuQuantizer.Fp8Rows(fixture.Accelerator, spec, xb, n, k);
        Assert.NotEmpty(a.Flags);
        Assert.NotEmpty(b.Flags);
        var qa = GpuTestData.Reference(xa, m, k, BlockAxis.Last, spec, 0, 0, null, false, false);
        var qb = GpuTestData.Reference(xb, n, k, BlockAxis.Last, spec, 0, 0, null, false, false);
        // Biases that do not sum exactly with the products: the order of the two roundings would show.
        var bias = Enumerable.Range(0, n).Select(j => 0.1f * (j + 1) - 0.35f).ToArray();
        var d0 = new float[m * n];
        var counters = new long[] { 0, 10, 20, 0, 0, 0, 0 };
        var d = GpuQuantizer.Fp8Patch(fixture.Accelerator, a, b, d0, k, bias, counters);
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++)
            {
                if (!a.Flags.Contains(r) && !b.Flags.Contains(j)) { Assert.Equal(0f, d[r * n + j]); continue; }
                float expected = KernelOrderDot(p => qa[r * k + p], p => qb[j * k + p], k) + bias[j];
                AssertSame(expected, d[r * n + j], $"D[{r}, {j}]");
            }
        // The counts land on slots 1 (A) and 2 (B), added to what was there; the other slots are untouched.
        Assert.Equal(new long[] { 0, 10 + a.Flags.Length, 20 + b.Flags.Length, 0, 0, 0, 0 }, counters);
    }

    [Theory]
    [InlineData(1, 16)]
    [InlineData(7, 48)]
    [InlineData(130, 32)]
    public void Broadcast_repeats_the_row_down_every_row_bit_for_bit(int rows, int n)
    {
        // NaN and negative-zero patterns too: the kernel moves bytes, it must not touch a value.
        var row = Enumerable.Range(0, n).Select(j => (ushort)(j switch { 0 => 0x7FC1, 1 => 0x8000, _ => 0x3F80 + 37 * j })).ToArray();
        var d = GpuQuantizer.BroadcastRows(fixture.Accelerator, row, rows);
        Assert.Equal(rows * n, d.Length);
        for (int r = 0; r < rows; r++) Assert.Equal(row, d[(r * n)..((r + 1) * n)]);
        var rowF = Enumerable.Range(0, n).Select(j => j == 0 ? float.NaN : -0.1f * j).ToArray();
        var dF = GpuQuantizer.BroadcastRows(fixture.Accelerator, rowF, rows);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) Assert.Equal(BitConverter.SingleToInt32Bits(rowF[j]), BitConverter.SingleToInt32Bits(dF[r * n + j]));
        Assert.Throws<ArgumentException>(() => GpuQuantizer.BroadcastRows(fixture.Accelerator, new ushort[12], rows));
    }
}
