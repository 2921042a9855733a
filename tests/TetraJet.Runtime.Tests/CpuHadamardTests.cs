using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using TetraJet.Randomness;
using static TetraJet.Runtime.Tests.QuantizerTestData;

namespace TetraJet.Runtime.Tests;

public class CpuHadamardTests
{
    [Theory]
    [InlineData(BlockAxis.Last, 3, 48)]
    [InlineData(BlockAxis.Last, 300, 256)]
    [InlineData(BlockAxis.First, 32, 13)]
    [InlineData(BlockAxis.First, 512, 100)]
    public void Matches_the_scalar_transform_bit_for_bit(BlockAxis axis, int rows, int cols)
    {
        var rng = new Random(rows * 31 + cols);
        for (int t = 0; t < 4; t++)
        {
            var x = Tensor(rng, rows, cols, nonFinite: t == 3);
            uint signs = Philox.HadamardSigns((ulong)t, (ulong)rows);
            var expected = (float[])x.Clone();
            Hadamard.Apply(expected, rows, cols, axis, signs);
            var outOfPlace = new float[x.Length];
            CpuHadamard.Apply(x, outOfPlace, rows, cols, axis, signs);
            AssertBitsEqual(expected, outOfPlace, $"out of place {axis}");
            CpuHadamard.Apply(x, x, rows, cols, axis, signs);
            AssertBitsEqual(expected, x, $"in place {axis}");
        }
    }
}
