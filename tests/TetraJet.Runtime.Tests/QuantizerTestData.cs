using TetraJet.Quantization;

namespace TetraJet.Runtime.Tests;

/// <summary>Seeded random tensors with the values that break quantizers: amax at and beside 6·2^k, ties, zeros, subnormals, NaN/Inf, huge values.</summary>
internal static class QuantizerTestData
{
    public static readonly QuantSpec[] Specs =
    [
        new(QuantFormat.MXFP4),
        new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp),
        new(QuantFormat.NVFP4),
        new(QuantFormat.NVFP4Tensor),
        new(QuantFormat.NVFP4Tensor, Tile16: true),
        new(QuantFormat.MXFP8),
    ];

    static readonly float[] Ties = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f, 0.5f, 1.5f, 3f, 6f];
    static readonly int[] Exponents = [0, -3, 7, -60, -126, -135, -146, 100, 125];

    /// <summary>A [rows, cols] tensor; <paramref name="nonFinite"/> sprinkles NaN and ±Inf.</summary>
    public static float[] Tensor(Random rng, int rows, int cols, bool nonFinite)
    {
        int k = Exponents[rng.Next(Exponents.Length)];
        float unit = MathF.ScaleB(1f, k);
        var rowScale = Enumerable.Range(0, rows).Select(_ => rng.Next(4) == 0 ? MathF.ScaleB(1f, -rng.Next(0, 14)) : 1f).ToArray();
        var colScale = Enumerable.Range(0, cols).Select(_ => rng.Next(4) == 0 ? MathF.ScaleB(1f, -rng.Next(0, 14)) : 1f).ToArray();
        var x = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                float v = (float)(rng.NextDouble() * 12 - 6) * unit * rowScale[r] * colScale[c];
                x[r * cols + c] = rng.Next(6) switch
                {
                    0 => Sign(rng) * Ties[rng.Next(Ties.Length)] * unit,
                    1 => Sign(rng) * Adversarial(rng, 6f * unit),
                    2 => Sign(rng) * Adversarial(rng, 448f * unit),
                    _ => v,
                };
            }
        // Whole zero rows and columns give all-zero blocks along either axis.
        if (rows > 1 && rng.Next(2) == 0) Array.Clear(x, rng.Next(rows) * cols, cols);
        if (rng.Next(2) == 0) { int c = rng.Next(cols); for (int r = 0; r < rows; r++) x[r * cols + c] = 0; }
        if (rng.Next(3) == 0 && x.Length > 0) x[rng.Next(x.Length)] = Sign(rng) * float.MaxValue;
        if (rng.Next(3) == 0 && x.Length > 0) x[rng.Next(x.Length)] = Sign(rng) * float.Epsilon;
        if (nonFinite && x.Length > 0)
        {
            float[] bad = [float.NaN, float.PositiveInfinity, float.NegativeInfinity];
            for (int t = rng.Next(1, 4); t > 0; t--) x[rng.Next(x.Length)] = bad[rng.Next(3)];
        }
        return x;
    }

    static float Sign(Random rng) => rng.Next(2) == 0 ? 1f : -1f;

    static float Adversarial(Random rng, float at) => rng.Next(3) switch
    {
        0 => at,
        1 => MathF.BitIncrement(at),
        _ => MathF.BitDecrement(at),
    };

    /// <summary>Bit equality with every NaN equal to every other.</summary>
    public static void AssertBitsEqual(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) && float.IsNaN(a)) continue;
            if (BitConverter.SingleToUInt32Bits(e) != BitConverter.SingleToUInt32Bits(a))
                Assert.Fail($"{what}: element {i}: expected {e:R} (0x{BitConverter.SingleToUInt32Bits(e):X8}), got {a:R} (0x{BitConverter.SingleToUInt32Bits(a):X8})");
        }
    }
}
