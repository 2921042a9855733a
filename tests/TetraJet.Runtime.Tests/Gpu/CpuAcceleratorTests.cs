using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>Every kernel, run by ILGPU's CPU accelerator, against the reference, bit for bit (small shapes: it is slow).</summary>
[Collection("cpu accelerator")]
public class CpuAcceleratorTests(CpuAcceleratorFixture fixture)
{
    public static TheoryData<string, string, bool, bool, bool> Cases()
    {
        var data = new TheoryData<string, string, bool, bool, bool>();
        foreach (var spec in GpuTestData.AllSpecs())
            foreach (var axis in new[] { BlockAxis.Last, BlockAxis.First })
            {
                if (spec.Tile16 && axis == BlockAxis.First) continue;
                foreach (bool pad in spec.Tile16 ? new[] { false } : new[] { false, true })
                    foreach (bool had in spec.Tile16 || spec.Rounding == Rounding.EmaGuided ? new[] { false } : new[] { false, true })
                        data.Add(Name(spec), axis.ToString(), pad, had, false);
            }
        // Non-finite inputs: every format once, both axes.
        foreach (var spec in GpuTestData.AllSpecs().Where(s => s.Rounding == Rounding.Nearest))
            foreach (var axis in spec.Tile16 ? new[] { BlockAxis.Last } : new[] { BlockAxis.Last, BlockAxis.First })
                data.Add(Name(spec), axis.ToString(), false, false, true);
        return data;
    }

    static string Name(QuantSpec s) => $"{s.Format}|{s.Rounding}|{s.ScaleRule}|{s.Tile16}";

    static QuantSpec Parse(string name)
    {
        var p = name.Split('|');
        return new(Enum.Parse<QuantFormat>(p[0]), Enum.Parse<Rounding>(p[1]), Enum.Parse<ScaleRule>(p[2]), bool.Parse(p[3]));
    }

    /// <summary>Shape: the block axis is a features multiple, or (pad) a length that needs token-axis padding.</summary>
    static (int rows, int cols) Shape(QuantSpec spec, BlockAxis axis, bool pad)
    {
        if (spec.Tile16) return (32, 48);
        int len = spec.Format == QuantFormat.NVFP4 ? 256 : 64;
        if (pad) len = spec.Format == QuantFormat.NVFP4 ? 208 : 48;       // multiples of 16 (RHT), not of the block
        return axis == BlockAxis.Last ? (3, len) : (len, 40);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_matches_reference_float32_and_bfloat16(string specName, string axisName, bool pad, bool hadamard, bool nonFinite)
    {
        var spec = Parse(specName);
        var axis = Enum.Parse<BlockAxis>(axisName);
        var (rows, cols) = Shape(spec, axis, pad);
        const ulong seed = 42, stream = 7;
        var x = GpuTestData.Adversarial(rows, cols, rows * 31 + cols, nonFinite);
        var ema = spec.Rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 5) : null;

        var expected = GpuTestData.Reference(x, rows, cols, axis, spec, seed, stream, ema, pad, hadamard);
        var actual = new float[x.Length];
        GpuQuantizer.Quantize(fixture.Accelerator, x, actual, rows, cols, axis, spec, seed, stream, ema, pad, hadamard);
        GpuTestData.AssertBitsEqual(expected, actual, $"{spec} {axis} f32");

        // bfloat16: the reference runs on the widened input and its output is rounded to bf16 as torch rounds it.
        var xb = GpuTestData.ToBf16(x);
        var expectedB = GpuTestData.ToBf16(GpuTestData.Reference(GpuTestData.FromBf16(xb), rows, cols, axis, spec, seed, stream, ema, pad, hadamard));
        var actualB = new ushort[x.Length];
        GpuQuantizer.QuantizeBf16(fixture.Accelerator, xb, actualB, rows, cols, axis, spec, seed, stream, ema, pad, hadamard);
        GpuTestData.AssertBitsEqual(expectedB, actualB, $"{spec} {axis} bf16");
    }

    /// <summary>
    /// Row kernels take two runs of 256 positions per warp, counted over the rows: rows of several runs, a partial last
    /// run, a pair split across two rows and a last pair whose second run is past the rows.
    /// </summary>
    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Nearest, 5, 544, false)]        // 3 runs per row (the last 32 wide), 15 runs
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, 5, 544, false)]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, 2, 1024, true)]     // 4 runs per row, RHT
    [InlineData(QuantFormat.MXFP8, Rounding.Stochastic, 3, 800, false)]     // 4 runs per row, the last 32 wide
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, 3, 640, true)]      // 3 runs per row (the last 128 wide), 9 runs
    [InlineData(QuantFormat.NVFP4, Rounding.Nearest, 7, 384, false)]        // 2 runs per row, the second half wide
    public void Row_kernels_match_reference_across_runs_and_rows(QuantFormat format, Rounding rounding, int rows, int cols, bool hadamard)
    {
        var spec = new QuantSpec(format, rounding);
        var x = GpuTestData.Adversarial(rows, cols, rows + cols);
        var expected = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 42, 7, null, false, hadamard);
        var actual = new float[x.Length];
        GpuQuantizer.Quantize(fixture.Accelerator, x, actual, rows, cols, BlockAxis.Last, spec, 42, 7, null, false, hadamard);
        GpuTestData.AssertBitsEqual(expected, actual, $"{spec} [{rows}, {cols}] f32");
        var xb = GpuTestData.ToBf16(x);
        var expectedB = GpuTestData.ToBf16(GpuTestData.Reference(GpuTestData.FromBf16(xb), rows, cols, BlockAxis.Last, spec, 42, 7, null, false, hadamard));
        var actualB = new ushort[x.Length];
        GpuQuantizer.QuantizeBf16(fixture.Accelerator, xb, actualB, rows, cols, BlockAxis.Last, spec, 42, 7, null, false, hadamard);
        GpuTestData.AssertBitsEqual(expectedB, actualB, $"{spec} [{rows}, {cols}] bf16");
    }

    [Theory]
    [InlineData(3, 1048)]   // three warps per row (512 positions each); the last lane's block holds 8 elements, 8 padded
    [InlineData(2, 1100)]   // not a multiple of 8: element accesses, one Philox block per element
    [InlineData(4, 520)]    // a second warp per row with one lane of 8
    public void Nvfp4_row_kernel_matches_reference_on_padded_rows(int rows, int cols)
    {
        foreach (var rounding in new[] { Rounding.Nearest, Rounding.Stochastic })
        {
            var spec = new QuantSpec(QuantFormat.NVFP4, rounding);
            var x = GpuTestData.Adversarial(rows, cols, rows * 7 + cols);
            var expected = GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 42, 7, null, true, false);
            var actual = new float[x.Length];
            GpuQuantizer.Quantize(fixture.Accelerator, x, actual, rows, cols, BlockAxis.Last, spec, 42, 7, null, true, false);
            GpuTestData.AssertBitsEqual(expected, actual, $"{spec} [{rows}, {cols}] padded, f32");
        }
    }

    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Nearest, 64, 96, false)]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, 64, 96, false)]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, 40, 64, false)]      // T padded to 64 for Q5
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, 144, 128, true)]     // T padded to 256 for Q5, RHT on both
    [InlineData(QuantFormat.NVFP4, Rounding.Nearest, 48, 256, false)]
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, 176, 384, true)]     // three regions across, a second region down holding 48 rows
    public void Fused_dY_kernel_matches_two_reference_quantizers(QuantFormat format, Rounding rounding, int rows, int cols, bool hadamard)
    {
        var x = GpuTestData.Adversarial(rows, cols, 3);
        var spec = new QuantSpec(format, rounding);
        var q3 = new float[x.Length];
        var q5 = new float[x.Length];
        GpuQuantizer.QuantizeDual(fixture.Accelerator, x, q3, q5, rows, cols, spec, 42, 11, 12, hadamard);
        GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.Last, spec, 42, 11, null, false, hadamard), q3, "Q3");
        GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, 42, 12, null, true, hadamard), q5, "Q5");
    }

    /// <summary>
    /// Blocks down a column that hold only zeros, some of them −0: the reference writes +0 throughout such a block (a
    /// zero block), while a −0 in a live block keeps its sign. The first-axis kernels and the fused dY kernel's Q5 get
    /// the zero block's +0 from their per-column offset.
    /// </summary>
    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Nearest)]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic)]
    [InlineData(QuantFormat.MXFP8, Rounding.Nearest)]
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic)]
    public void Zero_blocks_with_negative_zeros_along_the_first_axis_match_the_reference(QuantFormat format, Rounding rounding)
    {
        var spec = new QuantSpec(format, rounding);
        int rows = format == QuantFormat.NVFP4 ? 256 : 64, cols = format == QuantFormat.NVFP4 ? 128 : 64;
        var x = GpuTestData.Adversarial(rows, cols, 17);
        int block = format == QuantFormat.NVFP4 ? 16 : 32;
        for (int r = 0; r < block; r++)
        {
            x[r * cols + 3] = r % 2 == 0 ? 0f : -0f;                  // a zero block of mixed signs
            x[(block + r) * cols + 9] = -0f;                          // a zero block of −0 alone
        }
        x[5 * cols + 20] = -0f;                                       // −0 in a live block
        var expected = GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, 42, 7, null, true, false);
        var actual = new float[x.Length];
        GpuQuantizer.Quantize(fixture.Accelerator, x, actual, rows, cols, BlockAxis.First, spec, 42, 7, null, true, false);
        GpuTestData.AssertBitsEqual(expected, actual, $"{spec} first axis");
        Assert.Equal(0u, BitConverter.SingleToUInt32Bits(actual[block * cols + 9]));
        if (format == QuantFormat.MXFP8) return;
        var q3 = new float[x.Length];
        var q5 = new float[x.Length];
        GpuQuantizer.QuantizeDual(fixture.Accelerator, x, q3, q5, rows, cols, spec, 42, 11, 12, false);
        GpuTestData.AssertBitsEqual(GpuTestData.Reference(x, rows, cols, BlockAxis.First, spec, 42, 12, null, true, false), q5, $"{spec} fused Q5");
    }

    [Fact]
    public void Worked_example_MXFP4_block_quantizes_as_the_spec_says()
    {
        var x = new float[32];
        float[] head = [3, -1.25f, 0.75f, 0.2f, 2.5f, -5, 0, 1.75f];
        head.CopyTo(x, 0);
        var y = new float[32];
        GpuQuantizer.Quantize(fixture.Accelerator, x, y, 1, 32, BlockAxis.Last, new QuantSpec(QuantFormat.MXFP4));
        Assert.Equal(new float[] { 3, -1, 1, 0, 2, -4, 0, 2 }, y[..8]);
    }
}
