using TetraJet.Formats;
using TetraJet.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization;

/// <summary>
/// A quantized tensor in storage form (ALGORITHMS.md §1): FP4 codes two per byte (element 2i in the low nibble,
/// 2i+1 in the high nibble, sign in bit 3) or MXFP8 codes one byte each, inner scales one byte each (E8M0 or E4M3),
/// outer FP32 scales. Elements are in the reference's line order: line = row (block axis last) or column (first),
/// position along the line; 16×16 tiles use row-major order. <see cref="Dequantize(Span{float})"/> gives back exactly
/// the quantizer's dequantized values.
/// </summary>
public sealed class PackedTensor
{
    public QuantSpec Spec { get; }
    public BlockAxis Axis { get; }
    /// <summary>The original tensor's shape; the data is its [Rows, Cols] view.</summary>
    public long[] Shape { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>The dtype that <see cref="Dequantize()"/> returns (the quantized tensor's own).</summary>
    public ScalarType DType { get; }
    public byte[] Codes { get; }
    public byte[] Scales { get; }
    public float[] OuterScales { get; }

    PackedTensor(QuantSpec spec, BlockAxis axis, long[] shape, int rows, int cols, ScalarType dtype, byte[] codes, byte[] scales, float[] outer)
    {
        (Spec, Axis, Shape, Rows, Cols, DType, Codes, Scales, OuterScales) = (spec, axis, shape, rows, cols, dtype, codes, scales, outer);
    }

    public long Count => (long)Rows * Cols;
    bool Fp8 => Spec.Format == QuantFormat.MXFP8;
    int Lines => Axis == BlockAxis.Last ? Rows : Cols;
    int Length => Axis == BlockAxis.Last ? Cols : Rows;

    /// <summary>Bytes of codes needed for <paramref name="count"/> elements.</summary>
    public static long CodeBytes(QuantSpec spec, long count) => spec.Format == QuantFormat.MXFP8 ? count : (count + 1) / 2;

    /// <summary>Inner scales of a [rows, cols] tensor (one per block in line order, or per 16×16 tile).</summary>
    public static int ScaleCount(int rows, int cols, BlockAxis axis, QuantSpec spec)
    {
        if (spec.Tile16) return rows / 16 * (cols / 16);
        int lines = axis == BlockAxis.Last ? rows : cols, len = axis == BlockAxis.Last ? cols : rows;
        return lines * ((len + spec.Block - 1) / spec.Block);
    }

    /// <summary>Outer FP32 scales: one per 128-block in line order (NVFP4), one (per-tensor NVFP4), else none.</summary>
    public static int OuterCount(int rows, int cols, BlockAxis axis, QuantSpec spec) => spec.Format switch
    {
        QuantFormat.NVFP4 => (axis == BlockAxis.Last ? rows : cols) * (((axis == BlockAxis.Last ? cols : rows) + 127) / 128),
        QuantFormat.NVFP4Tensor => 1,
        _ => 0,
    };

    /// <summary>
    /// Packs the outputs of <see cref="Reference.ReferenceQuantizer.QuantizePacked"/>: <paramref name="codes"/> one per element
    /// (4-bit E2M1 codes or E4M3 bytes) in line order, inner scales and outer scales as it writes them.
    /// </summary>
    public static PackedTensor Pack(ReadOnlySpan<byte> codes, ReadOnlySpan<byte> scales, ReadOnlySpan<float> outerScales,
        int rows, int cols, BlockAxis axis, QuantSpec spec, long[]? shape = null, ScalarType dtype = ScalarType.Float32)
    {
        if (spec.Format == QuantFormat.None) throw new ArgumentException("an unquantized tensor has no packed form");
        long n = (long)rows * cols;
        int nScales = ScaleCount(rows, cols, axis, spec), nOuter = OuterCount(rows, cols, axis, spec);
        if (codes.Length < n || scales.Length < nScales || outerScales.Length < nOuter)
            throw new ArgumentException($"shape [{rows}, {cols}] needs {n} codes, {nScales} scales and {nOuter} outer scales; got {codes.Length}, {scales.Length}, {outerScales.Length}");
        var packed = new byte[CodeBytes(spec, n)];
        if (spec.Format == QuantFormat.MXFP8) codes[..(int)n].CopyTo(packed);
        else
            for (long i = 0; i < n; i++)
                packed[i >> 1] |= (byte)((codes[(int)i] & 0xF) << (int)((i & 1) * 4));
        return new PackedTensor(spec, axis, shape ?? [rows, cols], rows, cols, dtype, packed, scales[..nScales].ToArray(), outerScales[..nOuter].ToArray());
    }

    /// <summary>The code of element <paramref name="k"/> in storage order.</summary>
    public int Code(long k) => Fp8 ? Codes[k] : (Codes[k >> 1] >> (int)((k & 1) * 4)) & 0xF;

    /// <summary>Writes the dequantized [Rows, Cols] values (row-major) to <paramref name="y"/>, bit for bit the quantizer's output.</summary>
    public void Dequantize(Span<float> y)
    {
        if (y.Length < Count) throw new ArgumentException($"need {Count} elements, got {y.Length}");
        if (Spec.Tile16)
        {
            int tileCols = Cols / 16;
            for (int r = 0; r < Rows; r++)
                for (int c = 0; c < Cols; c++)
                {
                    long i = (long)r * Cols + c;
                    y[(int)i] = E2M1.Decode(Code(i)) * (E4M3.Decode(Scales[r / 16 * tileCols + c / 16]) * OuterScales[0]);
                }
            return;
        }
        int lines = Lines, len = Length, block = Spec.Block, blocksPerLine = (len + block - 1) / block, outerPerLine = (len + 127) / 128;
        for (int line = 0; line < lines; line++)
            for (int pos = 0; pos < len; pos++)
            {
                long k = (long)line * len + pos;
                int i = Axis == BlockAxis.Last ? line * Cols + pos : pos * Cols + line;
                byte scale = Scales[line * blocksPerLine + pos / block];
                y[i] = Spec.Format switch
                {
                    QuantFormat.MXFP4 => E2M1.Decode(Code(k)) * E8M0.Decode(scale),
                    QuantFormat.MXFP8 => E4M3.Decode((byte)Code(k)) * E8M0.Decode(scale),
                    // The quantizer's scale is the FP32 product s_i·s_o; multiply by it once, as it does.
                    QuantFormat.NVFP4 => E2M1.Decode(Code(k)) * (E4M3.Decode(scale) * OuterScales[line * outerPerLine + pos / 128]),
                    _ => E2M1.Decode(Code(k)) * (E4M3.Decode(scale) * OuterScales[0]),
                };
            }
    }

    /// <summary>The dequantized tensor: original shape, dtype <see cref="DType"/>, on the CPU.</summary>
    public Tensor Dequantize()
    {
        using var scope = NewDisposeScope();
        var y = empty(Rows, Cols, ScalarType.Float32);
        Dequantize(TensorMemory.Floats(y));
        return y.to(DType).reshape(Shape).MoveToOuterDisposeScope();
    }
}
