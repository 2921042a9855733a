using System.Runtime.CompilerServices;
using TetraJet.Formats;

namespace TetraJet.Quantization;

/// <summary>
/// The 16-point random Hadamard transform T = diag(d)·H16/4 (ALGORITHMS.md §3.5), in the fixed rounding order:
/// flip signs, butterflies with strides 1, 2, 4, 8 (each an FP32 add/sub), then ×0.25.
/// </summary>
public static class Hadamard
{
    public const int Size = 16;

    /// <summary>Transforms 16 values in place. <paramref name="signs"/>: bit j set → d_j = −1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transform16(Span<float> x, uint signs)
    {
        for (int j = 0; j < Size; j++)
            if (((signs >> j) & 1) != 0) x[j] = -x[j];
        for (int h = 1; h < Size; h <<= 1)
            for (int j = 0; j < Size; j++)
                if ((j & h) == 0)
                {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
        for (int j = 0; j < Size; j++) x[j] *= 0.25f;
    }

    /// <summary>
    /// Applies the transform to every 16 consecutive elements along <paramref name="axis"/> of a row-major
    /// [rows, cols] tensor, in place. The axis length must be a multiple of 16 (features axes are; a token
    /// axis is padded with zeros first by the caller).
    /// </summary>
    public static void Apply(Span<float> x, int rows, int cols, BlockAxis axis, uint signs)
    {
        int len = axis == BlockAxis.Last ? cols : rows;
        if (len % Size != 0) throw new ArgumentException($"the Hadamard axis has {len} elements, not a multiple of {Size}");
        Span<float> buf = stackalloc float[Size];
        int lines = axis == BlockAxis.Last ? rows : cols;
        for (int line = 0; line < lines; line++)
            for (int b = 0; b < len; b += Size)
            {
                for (int j = 0; j < Size; j++) buf[j] = x[Index(line, b + j, cols, axis)];
                Transform16(buf, signs);
                for (int j = 0; j < Size; j++) x[Index(line, b + j, cols, axis)] = buf[j];
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Index(int line, int pos, int cols, BlockAxis axis) => axis == BlockAxis.Last ? line * cols + pos : pos * cols + line;
}
