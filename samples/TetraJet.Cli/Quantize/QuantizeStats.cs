using System.Text;
using System.Text.Json;
using TetraJet.Formats;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;

namespace TetraJet.Cli.Quantize;

/// <summary>
/// The <c>--stats</c> line of <c>tetrajet quantize</c>. Every quantity refers to the tensor that was quantized (after
/// the RHT when <c>--hadamard</c> is given) and to its scale-sharing blocks (inner 16-blocks for NVFP4).
/// </summary>
/// <param name="ScaleRule">The MXFP4 scale rule; null (JSON null) for the other formats.</param>
/// <param name="Rmse">sqrt(mean((Q(x) − x)²)) over the elements of finite blocks (those not dequantized to NaN); 0 when there are none.</param>
/// <param name="MaxAbsError">max |Q(x) − x| over the same elements.</param>
/// <param name="SaturatedFraction">
/// The fraction of all elements, in finite blocks, whose scaled magnitude before rounding exceeds the element grid's
/// largest value (6 for FP4, 448 for FP8): |x·2^−s| &gt; max for MX formats, |x / (s_i·s_o)| &gt; 6 for NVFP4, each
/// computed with the same FP32 operations as the quantizer. Such elements are clipped to ±max·scale.
/// </param>
/// <param name="ZeroBlocks">Blocks whose input elements are all ±0.</param>
/// <param name="NanBlocks">Blocks dequantized to NaN: they hold NaN/±Inf, or (NVFP4) lie in an outer block or tensor that does.</param>
public sealed record QuantizeStats(string Format, string? ScaleRule, string Rounding, string Axis, int Rows, int Cols, long Blocks,
    double Rmse, double MaxAbsError, double SaturatedFraction, long ZeroBlocks, long NanBlocks)
{
    public static QuantizeStats Compute(float[] x, float[] y, int rows, int cols, BlockAxis axis, QuantSpec spec, QuantizeArgs args)
    {
        bool last = axis == BlockAxis.Last;
        int lines = last ? rows : cols, len = last ? cols : rows;
        int block = spec.Block, blocksPerLine = len / block, outerPerLine = (len + 127) / 128;
        var codes = new byte[x.Length];
        var scales = new byte[(long)lines * blocksPerLine];
        var outer = new float[Math.Max(1, lines * outerPerLine)];
        var scratch = new float[x.Length];
        ReferenceQuantizer.QuantizePacked(x, scratch, rows, cols, axis, spec, codes, scales, outer, args.Seed, args.Stream);

        bool mx = spec.Format is QuantFormat.MXFP4 or QuantFormat.MXFP8;
        float max = spec.Format == QuantFormat.MXFP8 ? E4M3.Max : E2M1.Max;
        double sumSq = 0, maxAbs = 0;
        long finite = 0, saturated = 0, zeroBlocks = 0, nanBlocks = 0;
        for (int line = 0; line < lines; line++)
            for (int b = 0; b < blocksPerLine; b++)
            {
                bool allZero = true, nan = false;
                for (int k = 0; k < block; k++)
                {
                    int pos = b * block + k;
                    int i = last ? line * cols + pos : pos * cols + line;
                    if (x[i] != 0) allZero = false;
                    if (float.IsNaN(y[i])) { nan = true; continue; }
                    double err = (double)y[i] - x[i];
                    sumSq += err * err;
                    maxAbs = Math.Max(maxAbs, Math.Abs(err));
                    finite++;
                    byte sc = scales[line * blocksPerLine + b];
                    // A zero NVFP4 scale quantizes its block to 0 without dividing: nothing saturates there.
                    float scale = mx ? 1f : E4M3.Decode(sc) * outer[spec.Format == QuantFormat.NVFP4 ? line * outerPerLine + pos / 128 : 0];
                    float scaled = mx ? x[i] * Bits.Pow2(-(sc - 127)) : x[i] / scale;
                    if (scale != 0 && Bits.Abs(scaled) > max) saturated++;
                }
                if (allZero) zeroBlocks++;
                if (nan) nanBlocks++;
            }
        return new QuantizeStats(args.Format ?? "", spec.Format == QuantFormat.MXFP4 ? args.ScaleRule ?? "tetrajet" : null, args.Rounding, args.Axis, rows, cols, (long)lines * blocksPerLine,
            finite == 0 ? 0 : Math.Sqrt(sumSq / finite), maxAbs, x.Length == 0 ? 0 : (double)saturated / x.Length, zeroBlocks, nanBlocks);
    }

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            if (ScaleRule is null) w.WriteNull("scale_rule");
            else w.WriteString("scale_rule", ScaleRule);
            w.WriteString("rounding", Rounding);
            w.WriteString("axis", Axis);
            w.WriteStartArray("shape"); w.WriteNumberValue(Rows); w.WriteNumberValue(Cols); w.WriteEndArray();
            w.WriteNumber("blocks", Blocks);
            Number(w, "rmse", Rmse);
            Number(w, "max_abs_error", MaxAbsError);
            Number(w, "saturated_fraction", SaturatedFraction);
            w.WriteNumber("zero_blocks", ZeroBlocks);
            w.WriteNumber("nan_blocks", NanBlocks);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// JSON has no infinity or NaN (an error of an element dequantized to ±∞ is infinite): those are written as the
    /// strings "Infinity", "-Infinity" and "NaN", as System.Text.Json's AllowNamedFloatingPointLiterals reads them.
    /// </summary>
    static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteString(name, double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
    }
}
