using ILGPU;
using ILGPU.Runtime;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The row kernels walk their 256-position chunks grid-stride (the grid is capped near two waves on the GPU); here one
/// group of 4 warps walks many chunks each, prefetching the next, and must give the reference's bits as a full grid does.
/// </summary>
[Collection("cpu accelerator")]
public class GridStrideTests(CpuAcceleratorFixture fixture)
{
    const int Rows = 9, Cols = 1056;          // 9 × 5 chunks (the last of each row an eighth full): 45 chunks for 4 warps

    [Theory]
    [InlineData(QuantFormat.MXFP4, Rounding.Stochastic, false)]
    [InlineData(QuantFormat.MXFP4, Rounding.EmaGuided, false)]
    [InlineData(QuantFormat.NVFP4, Rounding.Stochastic, true)]
    public void One_group_walking_every_chunk_matches_the_reference(QuantFormat format, Rounding rounding, bool hadamard)
    {
        var acc = fixture.Accelerator;
        var spec = new QuantSpec(format, rounding);
        int cols = format == QuantFormat.NVFP4 ? 1152 : Cols;
        var x = GpuTestData.Adversarial(Rows, cols, 21, nonFinite: true);
        var ema = rounding == Rounding.EmaGuided ? GpuTestData.Ema(x, 2) : new float[1];
        uint signs = hadamard ? 0xB4D2u : 0u;
        int n = Rows * cols;
        using var xb = acc.Allocate1D(x);
        using var yb = acc.Allocate1D<float>(n);
        using var eb = acc.Allocate1D(ema);
        using var ab = acc.Allocate1D<uint>(1);
        using var cb = acc.Allocate1D<byte>(n / 2);
        using var sb = acc.Allocate1D<byte>(n / spec.Block);
        using var ob = acc.Allocate1D<float>(Math.Max(1, n / 128));
        new IlgpuRunner(acc).Launch(LibraryKernels.Rows(spec, hadamard, store: true).F32, KernelGeometry.GroupSize,
            (ArrayView<float>)xb.View, (ArrayView<float>)yb.View, (ArrayView<float>)eb.View, (ArrayView<uint>)ab.View,
            (ArrayView<byte>)cb.View, (ArrayView<byte>)sb.View, (ArrayView<float>)ob.View, Rows, cols, 42UL, 7UL, signs);
        acc.Synchronize();

        var input = (float[])x.Clone();
        if (hadamard) Hadamard.Apply(input, Rows, cols, BlockAxis.Last, signs);
        var expected = new float[n];
        var codes = new byte[n];
        var scales = new byte[n / spec.Block];
        var outer = new float[Math.Max(1, n / 128)];
        Quantization.Reference.ReferenceQuantizer.QuantizePacked(input, expected, Rows, cols, BlockAxis.Last, spec, codes, scales, outer, 42, 7,
            rounding == Rounding.EmaGuided ? ema : default);
        GpuTestData.AssertBitsEqual(expected, yb.GetAsArray1D(), $"{spec} values");
        Assert.Equal(scales, sb.GetAsArray1D());
        if (format == QuantFormat.NVFP4) Assert.Equal(outer, ob.GetAsArray1D());
        // The reference writes one code per byte in line order; the kernel packs two per byte, element 2i low.
        var packed = cb.GetAsArray1D();
        for (int i = 0; i < n; i++) Assert.Equal(codes[i], (byte)((packed[i >> 1] >> ((i & 1) * 4)) & 15));
    }

    [Fact]
    public void One_group_walking_every_chunk_writes_the_FP8_operand_of_a_full_grid()
    {
        var acc = fixture.Accelerator;
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
        var x = GpuTestData.Adversarial(Rows, Cols, 22, nonFinite: true);
        Fp8SelfCheck.Plant(x, Rows, Cols, true);
        var full = GpuQuantizer.Fp8Rows(acc, spec, x, Rows, Cols, store: true, 42, 9);

        int n = Rows * Cols, groups = (Cols + 127) / 128;
        using var xb = acc.Allocate1D(x);
        using var eb = acc.Allocate1D<float>(1);
        using var c8 = acc.Allocate1D<byte>(n);
        using var s8 = acc.Allocate1D<float>(groups * Rows);
        using var fb = acc.Allocate1D<int>(1 + groups * Rows);
        using var sd = acc.Allocate1D<float>(n);
        using var cb = acc.Allocate1D<byte>(n / 2);
        using var sb = acc.Allocate1D<byte>(n / 32);
        fb.MemSetToZero();
        sd.MemSetToZero();
        new IlgpuRunner(acc).Launch(LibraryKernels.Fp8Rows(spec, store: true).F32, KernelGeometry.GroupSize,
            (ArrayView<float>)xb.View, (ArrayView<float>)eb.View, (ArrayView<byte>)c8.View, (ArrayView<float>)s8.View, (ArrayView<int>)fb.View,
            (ArrayView<float>)sd.View, (ArrayView<byte>)cb.View, (ArrayView<byte>)sb.View, Rows, Cols, 42UL, 9UL);
        acc.Synchronize();
        Assert.Equal(full.Codes8, c8.GetAsArray1D());
        Assert.Equal(full.Scales8, s8.GetAsArray1D());
        Assert.Equal(full.Codes, cb.GetAsArray1D());
        Assert.Equal(full.Scales, sb.GetAsArray1D());
        GpuTestData.AssertBitsEqual(full.Side, sd.GetAsArray1D(), "side");
        var flags = fb.GetAsArray1D();
        Assert.Equal(full.Flags.Order(), flags[1..(1 + flags[0])].Order());
        Assert.NotEmpty(full.Flags);
    }
}
