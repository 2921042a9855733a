using TetraJet.Quantization.Reference;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The CPU fast path: same contract and bits as <see cref="ReferenceQuantizer.Quantize"/>.
/// </summary>
public static class CpuQuantizer
{
    public static void Quantize(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false)
        => ReferenceQuantizer.Quantize(x, y, rows, cols, axis, spec, seed, stream, ema, padBlockAxis);
}
