using System.Runtime.Intrinsics;
using TetraJet.Formats;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The CPU fast path of the FP4 and MXFP8 storage forms along the last axis: a loop per row, parallel over rows, with the steps of
/// <see cref="PackCore"/>. Writes the same bytes as <see cref="Reference.ReferenceQuantizer.QuantizePacked"/> (its
/// reference; the tests compare them).
/// </summary>
public static unsafe class CpuPacking
{
    /// <summary>
    /// Codes (two per byte; MXFP8 one per byte), scale bytes and, for NVFP4, outer scales of q = Q(x), both [rows, cols] float32, quantized
    /// with <paramref name="spec"/> along the last axis with Philox key <paramref name="seed"/>, stream
    /// <paramref name="stream"/> and (EMA-guided) the EMA weights <paramref name="ema"/>. Codes come from q, except in
    /// a block whose values can overflow FP32 (q = ±Inf no longer tells the grid value): there the grid values are
    /// recomputed from x, as the quantizer rounded them.
    /// </summary>
    public static void Pack(float* x, float* q, byte* codes, byte* scales, float* outer, int rows, int cols, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, float* ema = null)
    {
        if (spec.Format == QuantFormat.MXFP8) { PackMx8(x, q, codes, scales, rows, cols, spec, seed, stream, ema); return; }
        bool mx = spec.Format == QuantFormat.MXFP4;
        var rule = spec.ScaleRule;
        Rows(rows, cols, r =>
        {
            long row = (long)r * cols;
            float* xr = x + row, qr = q + row;
            byte* cr = codes + row / 2;
            if (mx)
                for (int b = 0; b < cols; b += 32)
                {
                    byte scale = PackCore.MxScale(AmaxBits(xr + b, 32), rule, out float inverse);
                    scales[(row + b) / 32] = scale;
                    if (scale == E8M0.NaN) new Span<byte>(cr + b / 2, 16).Clear();
                    else if (scale < E8M0.Encode(OverflowExponent)) Codes(qr + b, 32, inverse, divide: false, cr + b / 2);
                    else
                        for (int k = 0; k < 32; k += 2)
                            cr[(b + k) / 2] = (byte)(E2M1.Encode(Grid(x, ema, row + b + k, scale - 127, 0f, spec, seed, stream))
                                | E2M1.Encode(Grid(x, ema, row + b + k + 1, scale - 127, 0f, spec, seed, stream)) << 4);
                }
            else
                for (int o = 0; o < cols; o += 128)
                {
                    uint outerBits = AmaxBits(xr + o, 128);
                    for (int b = o; b < o + 128; b += 16)
                    {
                        byte code = PackCore.NvScale(outerBits, AmaxBits(xr + b, 16), out float so, out float scale);
                        scales[(row + b) / 16] = code;
                        if (outerBits >= 0x7F800000u) new Span<byte>(cr + b / 2, 8).Clear();
                        else if (outerBits < OverflowAmaxBits) Codes(qr + b, 16, scale, divide: true, cr + b / 2);
                        else
                            for (int k = 0; k < 16; k += 2)
                                cr[(b + k) / 2] = (byte)(E2M1.Encode(Grid(x, ema, row + b + k, 0, scale, spec, seed, stream))
                                    | E2M1.Encode(Grid(x, ema, row + b + k + 1, 0, scale, spec, seed, stream)) << 4);
                        if (b == o) outer[(row + o) / 128] = so;
                    }
                }
        });
    }

    /// <summary>From this MX exponent up, a grid value times 2^s can reach 2^128 (6·2^126 does): FP32 overflow.</summary>
    const int OverflowExponent = 126;

    /// <summary>From this NVFP4 outer amax (2^127) up, a grid value times its block scale can overflow FP32.</summary>
    const uint OverflowAmaxBits = 0x7F000000u;

    /// <summary>The grid value element i was rounded to (MX: exponent s; NVFP4: the block scale), with the quantizer's own inputs.</summary>
    static float Grid(float* x, float* ema, long i, int s, float scale, QuantSpec spec, ulong seed, ulong stream)
    {
        float u = spec.Rounding == Rounding.Stochastic ? Philox.Uniform(seed, stream, i) : 0f;
        float e = spec.Rounding == Rounding.EmaGuided ? ema[i] : 0f;
        return spec.Format switch
        {
            QuantFormat.MXFP4 => ScalarCore.MxGrid(x[i], s, false, spec.Rounding, u, e),
            QuantFormat.MXFP8 => ScalarCore.MxGrid(x[i], s, true, spec.Rounding, u, e),
            _ => ScalarCore.NvGrid(x[i], scale, spec.Rounding, u, e),
        };
    }

    /// <summary>The float32 values of a [rows, cols] tensor in storage form.</summary>
    public static void Unpack(byte* codes, byte* scales, float* outer, float* y, int rows, int cols, QuantSpec spec)
    {
        if (spec.Format == QuantFormat.MXFP8) { UnpackMx8(codes, scales, y, rows, cols); return; }
        bool mx = spec.Format == QuantFormat.MXFP4;
        int block = mx ? 32 : 16;
        Rows(rows, cols, r =>
        {
            long row = (long)r * cols;
            // Per block, the 16 values its codes can take (the same FP32 products), then look-ups without branches.
            float* values = stackalloc float[16];
            for (int b = 0; b < cols; b += block)
            {
                float scale = mx ? E8M0.Decode(scales[(row + b) / 32]) : E4M3.Decode(scales[(row + b) / 16]) * outer[(row + b) / 128];
                for (int c = 0; c < 16; c++) values[c] = E2M1.Decode(c) * scale;
                byte* cb = codes + (row + b) / 2;
                float* yb = y + row + b;
                for (int k = 0; k < block; k += 2)
                {
                    int pair = cb[k >> 1];
                    yb[k] = values[pair & 15];
                    yb[k + 1] = values[pair >> 4];
                }
            }
        });
    }

    /// <summary>MXFP8: one E4M3 code per element, one E8M0 byte per 32 (<see cref="PackCore.Mx8Scale"/>, <see cref="PackCore.Mx8Code"/>).</summary>
    static void PackMx8(float* x, float* q, byte* codes, byte* scales, int rows, int cols, QuantSpec spec, ulong seed, ulong stream, float* ema) =>
        Rows(rows, cols, r =>
        {
            long row = (long)r * cols;
            for (int b = 0; b < cols; b += 32)
            {
                byte scale = PackCore.Mx8Scale(AmaxBits(x + row + b, 32), out float inverse);
                scales[(row + b) / 32] = scale;
                byte* cb = codes + row + b;
                float* qb = q + row + b;
                if (scale == E8M0.NaN) new Span<byte>(cb, 32).Clear();
                else if (scale < E8M0.Encode(Mx8OverflowExponent)) for (int k = 0; k < 32; k++) cb[k] = PackCore.Mx8Code(qb[k], inverse);
                else for (int k = 0; k < 32; k++) cb[k] = E4M3.Encode(Grid(x, ema, row + b + k, scale - 127, 0f, spec, seed, stream));
            }
        });

    /// <summary>From this MXFP8 exponent up, an E4M3 value (up to 448 = 1.75·2^8) times 2^s can overflow FP32.</summary>
    const int Mx8OverflowExponent = 127 - 8;

    /// <summary>All 256 E4M3 values, so that unpacking is a look-up and one exact product per element.</summary>
    static readonly float[] E4M3Values = Enumerable.Range(0, 256).Select(c => E4M3.Decode((byte)c)).ToArray();

    static void UnpackMx8(byte* codes, byte* scales, float* y, int rows, int cols) => Rows(rows, cols, r =>
    {
        long row = (long)r * cols;
        for (int b = 0; b < cols; b += 32)
        {
            float scale = E8M0.Decode(scales[(row + b) / 32]);
            byte* cb = codes + row + b;
            float* yb = y + row + b;
            for (int k = 0; k < 32; k++) yb[k] = E4M3Values[cb[k]] * scale;
        }
    });

    /// <summary>
    /// Codes of n values (a multiple of 8), two per byte: <see cref="PackCore.MxCode"/> (q·factor) or
    /// <see cref="PackCore.NvCode"/> (q / factor). Eight at a time, the nearest code as the count of midpoints below
    /// (compare masks are −1): random codes defeat a branch predictor.
    /// </summary>
    static void Codes(float* q, int n, float factor, bool divide, byte* dst)
    {
        if (!Vector256.IsHardwareAccelerated || CpuQuantizer.ForceScalar)
        {
            for (int k = 0; k < n; k += 2)
                dst[k >> 1] = divide
                    ? (byte)(PackCore.NvCode(q[k], factor) | PackCore.NvCode(q[k + 1], factor) << 4)
                    : (byte)(PackCore.MxCode(q[k], factor) | PackCore.MxCode(q[k + 1], factor) << 4);
            return;
        }
        var f = Vector256.Create(factor);
        int* c = stackalloc int[8];
        for (int k = 0; k < n; k += 8)
        {
            var v = Vector256.Load(q + k);
            var a = Vector256.Abs(divide ? v / f : v * f);
            var sum = Vector256.GreaterThan(a, Vector256.Create(0.25f)).AsInt32()
                + Vector256.GreaterThanOrEqual(a, Vector256.Create(0.75f)).AsInt32()
                + Vector256.GreaterThan(a, Vector256.Create(1.25f)).AsInt32()
                + Vector256.GreaterThanOrEqual(a, Vector256.Create(1.75f)).AsInt32()
                + Vector256.GreaterThan(a, Vector256.Create(2.5f)).AsInt32()
                + Vector256.GreaterThanOrEqual(a, Vector256.Create(3.5f)).AsInt32()
                + Vector256.GreaterThan(a, Vector256.Create(5f)).AsInt32();
            var sign = Vector256.ShiftRightArithmetic(v.AsInt32(), 31) & Vector256.Create(8);
            (sign - sum).Store(c);
            for (int j = 0; j < 8; j += 2) dst[(k + j) >> 1] = (byte)(c[j] | c[j + 1] << 4);
        }
    }

    static uint AmaxBits(float* v, int n)
    {
        uint m = 0;
        for (int k = 0; k < n; k++) m = Math.Max(m, Bits.AsUInt(v[k]) & 0x7FFFFFFFu);
        return m;
    }

    /// <summary>Rows in parallel once the tensor is large enough to pay for the scheduling.</summary>
    static void Rows(int rows, int cols, Action<int> body)
    {
        if ((long)rows * cols < CpuQuantizer.ParallelThreshold) { for (int r = 0; r < rows; r++) body(r); return; }
        Parallel.For(0, rows, body);
    }
}
