using TetraJet.Formats;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The CPU fast path of the FP4 storage form along the last axis: a loop per row, parallel over rows, with the steps of
/// <see cref="PackCore"/> that the GPU kernels use. Writes the same bytes as the tensor-operation path of
/// <see cref="DevicePacking"/> (its reference; the tests compare them).
/// </summary>
public static unsafe class CpuPacking
{
    /// <summary>Codes (two per byte), scale bytes and, for NVFP4, outer scales of q = Q(x), both [rows, cols] float32.</summary>
    public static void Pack(float* x, float* q, byte* codes, byte* scales, float* outer, int rows, int cols, QuantSpec spec)
    {
        bool mx = spec.Format == QuantFormat.MXFP4;
        var rule = spec.ScaleRule;
        Rows(rows, cols, r =>
        {
            float* xr = x + (long)r * cols, qr = q + (long)r * cols;
            byte* cr = codes + (long)r * cols / 2;
            if (mx)
                for (int b = 0; b < cols; b += 32)
                {
                    byte scale = PackCore.MxScale(AmaxBits(xr + b, 32), rule, out float inverse);
                    scales[((long)r * cols + b) / 32] = scale;
                    for (int k = 0; k < 32; k += 2)
                        cr[(b + k) / 2] = scale == E8M0.NaN ? (byte)0
                            : (byte)(PackCore.MxCode(qr[b + k], inverse) | PackCore.MxCode(qr[b + k + 1], inverse) << 4);
                }
            else
                for (int o = 0; o < cols; o += 128)
                {
                    uint outerBits = AmaxBits(xr + o, 128);
                    for (int b = o; b < o + 128; b += 16)
                    {
                        byte code = PackCore.NvScale(outerBits, AmaxBits(xr + b, 16), out float so, out float scale);
                        scales[((long)r * cols + b) / 16] = code;
                        for (int k = 0; k < 16; k += 2)
                            cr[(b + k) / 2] = outerBits >= 0x7F800000u ? (byte)0
                                : (byte)(PackCore.NvCode(qr[b + k], scale) | PackCore.NvCode(qr[b + k + 1], scale) << 4);
                        if (b == o) outer[((long)r * cols + o) / 128] = so;
                    }
                }
        });
    }

    /// <summary>The float32 values of a [rows, cols] tensor in storage form.</summary>
    public static void Unpack(byte* codes, byte* scales, float* outer, float* y, int rows, int cols, QuantSpec spec)
    {
        bool mx = spec.Format == QuantFormat.MXFP4;
        int block = mx ? 32 : 16;
        Rows(rows, cols, r =>
        {
            long row = (long)r * cols;
            for (int b = 0; b < cols; b += block)
            {
                float scale = mx ? E8M0.Decode(scales[(row + b) / 32]) : E4M3.Decode(scales[(row + b) / 16]) * outer[(row + b) / 128];
                for (int k = 0; k < block; k += 2)
                {
                    int pair = codes[(row + b + k) / 2];
                    y[row + b + k] = E2M1.Decode(pair & 15) * scale;
                    y[row + b + k + 1] = E2M1.Decode(pair >> 4) * scale;
                }
            }
        });
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
