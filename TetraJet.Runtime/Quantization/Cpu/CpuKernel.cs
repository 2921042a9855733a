using TetraJet.Quantization.Reference;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// One quantizer's CPU kernel, selected once (<see cref="CpuQuantizer.Prepare"/>): format, rounding and axis are fixed
/// in its body, so running it looks at none of them. Same contract and bits as <see cref="ReferenceQuantizer.Quantize"/>.
/// </summary>
public sealed unsafe class CpuKernel
{
    readonly CpuQuantizer.Body? body;

    internal CpuKernel(QuantSpec spec, BlockAxis axis, CpuQuantizer.Body? body) => (Spec, Axis, this.body) = (spec, axis, body);

    public QuantSpec Spec { get; }
    public BlockAxis Axis { get; }

    /// <summary>Writes Q(x) to <paramref name="y"/> (may not alias <paramref name="x"/>); arguments as <see cref="ReferenceQuantizer.Quantize"/>.</summary>
    public void Run(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, ulong seed = 0, ulong stream = 0,
        ReadOnlySpan<float> ema = default, bool padBlockAxis = false)
    {
        long n = (long)rows * cols;
        if (x.Length < n || y.Length < n) throw new ArgumentException($"buffers hold {x.Length} and {y.Length} elements, the shape [{rows}, {cols}] needs {n}");
        if (Spec.Rounding == Rounding.EmaGuided && ema.Length < n) throw new ArgumentException("EMA-guided rounding needs an EMA tensor of the same shape");
        ReferenceQuantizer.CheckShape(rows, cols, Axis, Spec, padBlockAxis);
        if (body is null) { x[..(int)n].CopyTo(y); return; }
        if (n == 0) return;
        fixed (float* px = x, py = y, pe = ema)
            CpuQuantizer.Run(body, new KernelArgs(px, py, Spec.Rounding == Rounding.EmaGuided ? pe : null, rows, cols, seed, stream, 0f), Axis, Spec);
    }
}
