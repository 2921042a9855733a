using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;

namespace TetraJet.Runtime.Tests;

/// <summary>SR is unbiased: E[SR(v)] = v, and P(hi) = (a − lo)/(hi − lo), checked within 4 standard errors.</summary>
public class StochasticRoundingTests
{
    // Blocks whose amax is 6 (MXFP4, s = 0) or 448 (MXFP8, s = 0), so the scaled value is v itself.
    [Theory]
    [InlineData(QuantFormat.MXFP4, 6f, 0.3f)]
    [InlineData(QuantFormat.MXFP4, 6f, 0.75f)]
    [InlineData(QuantFormat.MXFP4, 6f, 1.0001f)]
    [InlineData(QuantFormat.MXFP4, 6f, -2.5f)]
    [InlineData(QuantFormat.MXFP4, 6f, 3.99f)]
    [InlineData(QuantFormat.MXFP4, 6f, 5.9f)]
    [InlineData(QuantFormat.MXFP4, 6f, -0.01f)]
    [InlineData(QuantFormat.MXFP8, 448f, 0.3f)]
    [InlineData(QuantFormat.MXFP8, 448f, -17.01f)]
    [InlineData(QuantFormat.MXFP8, 448f, 300f)]
    [InlineData(QuantFormat.MXFP8, 448f, 0.0041f)]
    public void Mean_over_elements_is_the_value(QuantFormat format, float amax, float v)
    {
        const int rows = 700, cols = 32;                      // 700·31 = 21,700 samples
        var x = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            x[r * cols] = amax;
            for (int c = 1; c < cols; c++) x[r * cols + c] = v;
        }
        var y = new float[x.Length];
        CpuQuantizer.Quantize(x, y, rows, cols, BlockAxis.Last, new QuantSpec(format, Rounding.Stochastic), seed: 1234, stream: 99);
        var samples = Enumerable.Range(0, rows).SelectMany(r => y.Skip(r * cols + 1).Take(cols - 1)).ToArray();
        AssertUnbiased(samples, v);
    }

    [Theory]
    [InlineData(0.6f)]
    [InlineData(2.25f)]
    [InlineData(4.01f)]
    public void Mean_over_streams_is_the_value(float v)
    {
        var x = new float[32];
        x[0] = 6f;
        x[5] = v;
        var y = new float[32];
        var samples = new float[20_000];
        var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
        for (int s = 0; s < samples.Length; s++)
        {
            CpuQuantizer.Quantize(x, y, 1, 32, BlockAxis.Last, spec, seed: 7, stream: (ulong)s);
            samples[s] = y[5];
        }
        AssertUnbiased(samples, v);
    }

    static void AssertUnbiased(float[] samples, float v)
    {
        var values = samples.Distinct().OrderBy(Math.Abs).ToArray();
        Assert.InRange(values.Length, 1, 2);                  // only the two grid neighbours occur
        double n = samples.Length;
        double lo = values[0], hi = values[^1];
        if (values.Length == 1) { Assert.Equal(v, (float)lo); return; }
        double p = (Math.Abs(v) - Math.Abs(lo)) / (Math.Abs(hi) - Math.Abs(lo));
        double pHat = samples.Count(s => s == (float)hi) / n;
        double seP = Math.Sqrt(p * (1 - p) / n);
        Assert.InRange(pHat, p - 4 * seP, p + 4 * seP);
        double mean = samples.Average(s => (double)s);
        double se = Math.Abs(hi - lo) * seP;
        Assert.InRange(mean, v - 4 * se, v + 4 * se);
    }
}
