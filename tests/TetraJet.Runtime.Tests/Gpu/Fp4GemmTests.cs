using TetraJet.Gemm;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The Blackwell FP4 GEMM slot's host-side parts (it cannot run without a GPU of compute capability 10.0): the selection
/// by compute capability, which storage forms it takes, and the tiled scale layout cuBLASLt reads.
/// </summary>
public class Fp4GemmTests
{
    [Theory]
    [InlineData(80, false)]
    [InlineData(89, false)]
    [InlineData(90, false)]
    [InlineData(100, true)]
    [InlineData(120, true)]
    public void Selected_from_compute_capability_10_0(int capability, bool selected)
    {
        string? verdict = Fp4Gemm.CapabilityVerdict(capability);
        Assert.Equal(selected, verdict is null);
        if (!selected) Assert.Contains($"this device has {capability / 10}.{capability % 10}", verdict);
    }

    [Fact]
    public void Off_on_the_CPU_and_layers_there_keep_their_GEMM()
    {
        Assert.Equal("not a CUDA device", Fp4Gemm.Unavailable(CPU));
        var layer = new QLinear(64, 32, Recipe.TetraJet);
        var x = randn(16, 64).requires_grad_(true);
        layer.call(x).sum().backward();
        Assert.False(layer.LastForwardUsedFp4);
    }

    [Fact]
    public void Takes_MXFP4_storage_along_k_with_shapes_cuBLASLt_accepts()
    {
        var mx = new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest);
        var nv = new QuantSpec(QuantFormat.NVFP4, Rounding.Nearest);
        PackedTensor P(QuantSpec s, int rows, int cols) => PackedTensor.Allocate(s, rows, cols, ScalarType.Float32, CPU);
        Assert.True(Fp4Gemm.Takes(P(mx, 32, 256), P(mx, 48, 256)));
        Assert.False(Fp4Gemm.Takes(P(mx, 32, 256), P(mx, 48, 384)));    // k differs
        Assert.False(Fp4Gemm.Takes(P(mx, 32, 160), P(mx, 48, 160)));    // k not a multiple of 128
        Assert.False(Fp4Gemm.Takes(P(mx, 24, 256), P(mx, 48, 256)));    // m not a multiple of 16
        Assert.False(Fp4Gemm.Takes(P(nv, 32, 256), P(nv, 48, 256)));    // NVFP4's 128-element outer scales: no cuBLASLt mode
    }

    [Fact]
    public void Scales_are_laid_out_in_128_by_4_tiles_as_cuBLASLt_reads_them()
    {
        const int rows = 300, cols = 10;   // padded to 384 × 12: three row tiles, three block tiles
        var values = Enumerable.Range(0, rows * cols).Select(i => (byte)(1 + i % 251)).ToArray();
        var tiled = Fp4Gemm.TiledScales(tensor(values, new long[] { rows, cols }));
        var got = tiled.data<byte>().ToArray();
        Assert.Equal(3 * 3 * 512, got.Length);
        var expected = new byte[got.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                expected[Fp4Gemm.TiledScaleOffset(r, c, cols)] = values[r * cols + c];
        Assert.Equal(expected, got);
        // The documented position of one element: row 165 = tile 1, quarter 1, lane 5; block 6 = tile 1, column 2.
        Assert.Equal((1 * 3 + 1) * 512 + 5 * 16 + 1 * 4 + 2, Fp4Gemm.TiledScaleOffset(165, 6, cols));
    }
}
