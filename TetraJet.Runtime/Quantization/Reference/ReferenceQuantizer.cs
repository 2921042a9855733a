using TetraJet.Formats;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Reference;

/// <summary>
/// The scalar reference: ALGORITHMS.md §3 line by line, one block at a time. It is the oracle that the SIMD
/// and ILGPU paths are tested against bit for bit; it is not meant to be fast.
/// </summary>
/// <remarks>
/// The tensor is a row-major [rows, cols] view. A "line" is one row (block axis <see cref="BlockAxis.Last"/>) or one
/// column (<see cref="BlockAxis.First"/>); blocks are consecutive elements of a line. Element indices for
/// stochastic rounding are row-major indices in the tensor as given.
/// </remarks>
public static class ReferenceQuantizer
{
    /// <summary>
    /// Writes Q(x) to <paramref name="y"/>. With <paramref name="padBlockAxis"/> a block axis that is not a block
    /// multiple is treated as zero-padded (token axis); otherwise it must be a multiple of the format's features block.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false)
        => Run(x, y, rows, cols, axis, spec, seed, stream, ema, padBlockAxis, default, default, default);

    /// <summary>
    /// As <see cref="Quantize"/>, also writing the element codes (one per byte, in line order: E2M1 4-bit codes or
    /// E4M3 bytes), the inner scales (E8M0 or E4M3 bytes, one per block in line order) and the FP32 outer scales
    /// (NVFP4: one per 128-block in line order; per-tensor NVFP4: one).
    /// </summary>
    public static void QuantizePacked(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        Span<byte> codes, Span<byte> scales, Span<float> outerScales,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false)
        => Run(x, y, rows, cols, axis, spec, seed, stream, ema, padBlockAxis, codes, scales, outerScales);

    /// <summary>Throws the error a features axis that is not a block multiple gets.</summary>
    public static void CheckShape(int rows, int cols, BlockAxis axis, QuantSpec spec, bool padBlockAxis, string what = "tensor")
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"{what}: negative size [{rows}, {cols}]");
        int len = axis == BlockAxis.Last ? cols : rows;
        int multiple = spec.FeatureMultiple;
        if (!padBlockAxis && len % multiple != 0)
            throw new ArgumentException(
                $"{what}: the block axis ({(axis == BlockAxis.Last ? "last" : "first")}) has {len} elements, which is not a multiple of {multiple} as {spec.Format} requires");
        if (spec.Tile16 && (rows % 16 != 0 || cols % 16 != 0))
            throw new ArgumentException($"{what}: 16x16 tiles need both sizes to be multiples of 16, got [{rows}, {cols}]");
    }

    static void Run(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed, ulong stream, ReadOnlySpan<float> ema, bool pad, Span<byte> codes, Span<byte> scales, Span<float> outer)
    {
        long n = (long)rows * cols;
        if (x.Length < n || y.Length < n) throw new ArgumentException($"buffers hold {x.Length} and {y.Length} elements, the shape [{rows}, {cols}] needs {n}");
        if (spec.Rounding == Rounding.EmaGuided && ema.Length < n) throw new ArgumentException("EMA-guided rounding needs an EMA tensor of the same shape");
        CheckShape(rows, cols, axis, spec, pad);
        var ctx = new Ctx(rows, cols, axis, spec, seed, stream, codes, scales);
        switch (spec.Format)
        {
            case QuantFormat.None:
                x[..(int)n].CopyTo(y);
                return;
            case QuantFormat.MXFP4:
            case QuantFormat.MXFP8:
                for (int line = 0; line < ctx.Lines; line++)
                    for (int b = 0, blk = 0; b < ctx.Len; b += 32, blk++)
                        MxBlock(x, y, ema, ref ctx, line, b, Math.Min(32, ctx.Len - b), blk);
                return;
            case QuantFormat.NVFP4:
                int outerPerLine = (ctx.Len + 127) / 128;
                for (int line = 0; line < ctx.Lines; line++)
                    for (int ob = 0; ob < outerPerLine; ob++)
                    {
                        int start = ob * 128, count = Math.Min(128, ctx.Len - start);
                        float amax = 0; bool bad = false;
                        for (int k = 0; k < count; k++) Accumulate(x[ctx.Index(line, start + k)], ref amax, ref bad);
                        float so = bad ? float.NaN : ScalarCore.NvOuterScale(amax);
                        if (!outer.IsEmpty) outer[line * outerPerLine + ob] = so;
                        for (int b = start; b < start + count; b += 16)
                            NvInner(x, y, ema, ref ctx, line, b, Math.Min(16, start + count - b), b / 16, so, bad);
                    }
                return;
            case QuantFormat.NVFP4Tensor:
                {
                    float amax = 0; bool bad = false;
                    for (long i = 0; i < n; i++) Accumulate(x[(int)i], ref amax, ref bad);
                    float so = bad ? float.NaN : ScalarCore.NvOuterScale(amax);
                    if (!outer.IsEmpty) outer[0] = so;
                    if (spec.Tile16) { NvTiles(x, y, ema, ref ctx, so, bad); return; }
                    for (int line = 0; line < ctx.Lines; line++)
                        for (int b = 0; b < ctx.Len; b += 16)
                            NvInner(x, y, ema, ref ctx, line, b, Math.Min(16, ctx.Len - b), b / 16, so, bad);
                    return;
                }
        }
    }

    ref struct Ctx(int rows, int cols, BlockAxis axis, QuantSpec spec, ulong seed, ulong stream, Span<byte> codes, Span<byte> scales)
    {
        public readonly int Cols = cols;
        public readonly BlockAxis Axis = axis;
        public readonly QuantSpec Spec = spec;
        public readonly ulong Seed = seed, Stream = stream;
        public readonly int Lines = axis == BlockAxis.Last ? rows : cols;
        public readonly int Len = axis == BlockAxis.Last ? cols : rows;
        public Span<byte> Codes = codes, Scales = scales;

        public readonly int Index(int line, int pos) => Axis == BlockAxis.Last ? line * Cols + pos : pos * Cols + line;
        public readonly float U(int index) => Spec.Rounding == Rounding.Stochastic ? Philox.Uniform(Seed, Stream, index) : 0f;
        public readonly void Code(int line, int pos, float q, bool fp8)
        {
            if (!Codes.IsEmpty) Codes[line * Len + pos] = fp8 ? E4M3.Encode(q) : (byte)E2M1.Encode(q);
        }
    }

    static void Accumulate(float v, ref float amax, ref bool bad)
    {
        if (Bits.IsNonFinite(v)) bad = true;
        else if (Bits.Abs(v) > amax) amax = Bits.Abs(v);
    }

    static void MxBlock(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> ema, ref Ctx c, int line, int start, int count, int blk)
    {
        bool fp8 = c.Spec.Format == QuantFormat.MXFP8;
        float amax = 0; bool bad = false;
        for (int k = 0; k < count; k++) Accumulate(x[c.Index(line, start + k)], ref amax, ref bad);
        int blocksPerLine = (c.Len + 31) / 32;
        if (bad || amax == 0)
        {
            // A non-finite block is all NaN (scale NaN, as in OCP MX); a zero block is all 0.
            if (!c.Scales.IsEmpty) c.Scales[line * blocksPerLine + blk] = bad ? E8M0.NaN : E8M0.Encode(E8M0.MinExponent);
            for (int k = 0; k < count; k++)
            {
                y[c.Index(line, start + k)] = bad ? float.NaN : 0f;
                c.Code(line, start + k, 0f, fp8);
            }
            return;
        }
        int s = ScalarCore.MxExponent(amax, fp8, c.Spec.ScaleRule);
        if (!c.Scales.IsEmpty) c.Scales[line * blocksPerLine + blk] = E8M0.Encode(s);
        for (int k = 0; k < count; k++)
        {
            int i = c.Index(line, start + k);
            float e = c.Spec.Rounding == Rounding.EmaGuided ? ema[i] : 0f;
            // Code the grid value itself: Q·2^-s would not give it back where Q = q·2^s overflowed to Inf.
            float q = ScalarCore.MxGrid(x[i], s, fp8, c.Spec.Rounding, c.U(i), e);
            y[i] = q * Bits.Pow2(s);
            c.Code(line, start + k, q, fp8);
        }
    }

    static void NvInner(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> ema, ref Ctx c, int line, int start, int count, int blk, float so, bool bad)
    {
        int blocksPerLine = (c.Len + 15) / 16;
        float amax = 0;
        for (int k = 0; k < count; k++) amax = Math.Max(amax, Bits.Abs(x[c.Index(line, start + k)]));
        float si = bad ? float.NaN : so == 0f ? 0f : ScalarCore.NvInnerScale(amax, so);
        if (!c.Scales.IsEmpty) c.Scales[line * blocksPerLine + blk] = E4M3.Encode(si);
        float scale = si * so;
        for (int k = 0; k < count; k++)
        {
            int i = c.Index(line, start + k);
            float g = bad ? 0f : ScalarCore.NvGrid(x[i], scale, c.Spec.Rounding, c.U(i), c.Spec.Rounding == Rounding.EmaGuided ? ema[i] : 0f);
            y[i] = bad ? float.NaN : g * scale;
            c.Code(line, start + k, g, false);
        }
    }

    /// <summary>Per-tensor NVFP4 with 16×16 tiles: amax and one E4M3 scale per tile, so W and Wᵀ share codes.</summary>
    static void NvTiles(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> ema, ref Ctx c, float so, bool bad)
    {
        int rows = c.Axis == BlockAxis.Last ? c.Lines : c.Len, cols = c.Cols;
        int tileCols = cols / 16;
        for (int tr = 0; tr < rows; tr += 16)
            for (int tc = 0; tc < cols; tc += 16)
            {
                float amax = 0;
                for (int r = tr; r < tr + 16; r++)
                    for (int k = tc; k < tc + 16; k++) amax = Math.Max(amax, Bits.Abs(x[r * cols + k]));
                float si = bad ? float.NaN : so == 0f ? 0f : ScalarCore.NvInnerScale(amax, so);
                if (!c.Scales.IsEmpty) c.Scales[tr / 16 * tileCols + tc / 16] = E4M3.Encode(si);
                float scale = si * so;
                for (int r = tr; r < tr + 16; r++)
                    for (int k = tc; k < tc + 16; k++)
                    {
                        int i = r * cols + k;
                        float g = bad ? 0f : ScalarCore.NvGrid(x[i], scale, c.Spec.Rounding, c.U(i), c.Spec.Rounding == Rounding.EmaGuided ? ema[i] : 0f);
                        y[i] = bad ? float.NaN : g * scale;
                        if (!c.Codes.IsEmpty) c.Codes[i] = (byte)E2M1.Encode(g);
                    }
            }
    }
}
