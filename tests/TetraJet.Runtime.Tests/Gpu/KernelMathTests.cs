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
