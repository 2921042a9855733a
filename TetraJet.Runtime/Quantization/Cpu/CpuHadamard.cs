using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The 16-point RHT of <see cref="Hadamard.Apply"/> vectorised, bit for bit: the same sign flips, butterflies
/// (a + b, a − b) and ×0.25, each an FP32 operation. Along the last axis a 16-block is two vectors (strides 1, 2, 4
/// inside a vector by lane shuffles, 8 across them); along the first axis each of 16 rows is a vector of 8 columns.
/// </summary>
public static unsafe class CpuHadamard
{
    /// <summary>Writes the transform of <paramref name="x"/> to <paramref name="y"/>; they may be the same span (in place).</summary>
    public static void Apply(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, uint signs)
    {
        long n = (long)rows * cols;
        int len = axis == BlockAxis.Last ? cols : rows;
        if (len % Hadamard.Size != 0) throw new ArgumentException($"the Hadamard axis has {len} elements, not a multiple of {Hadamard.Size}");
        if (x.Length < n || y.Length < n) throw new ArgumentException($"buffers hold {x.Length} and {y.Length} elements, the shape [{rows}, {cols}] needs {n}");
        if (n == 0) return;
        if (!CpuQuantizer.Vectorised)
        {
            if (!Unsafe.AreSame(ref Unsafe.AsRef(in x[0]), ref y[0])) x[..(int)n].CopyTo(y);
            Hadamard.Apply(y, rows, cols, axis, signs);
            return;
        }
        fixed (float* px = x, py = y)
        {
            float* src = px, dst = py;
            if (axis == BlockAxis.Last)
                ForChunks(rows, n, (r0, r1) => Rows(src, dst, r0, r1, cols, signs));
            else
                ForChunks(rows / 16, n, (g0, g1) => Columns(src, dst, g0 * 16, g1 * 16, cols, signs));
        }
    }

    static void ForChunks(int units, long n, Action<int, int> body)
    {
        int chunks = n < CpuQuantizer.ParallelThreshold ? 1 : Math.Min(units, Environment.ProcessorCount * 4);
        if (chunks <= 1) { body(0, units); return; }
        Parallel.For(0, chunks, k => body((int)((long)units * k / chunks), (int)((long)units * (k + 1) / chunks)));
    }

    static void Rows(float* src, float* dst, int r0, int r1, int cols, uint signs)
    {
        var signLo = SignMask(signs);
        var signHi = SignMask(signs >> 8);
        for (long i = (long)r0 * cols, end = (long)r1 * cols; i < end; i += 16)
        {
            var a = Vector256.Load(src + i) ^ signLo;
            var b = Vector256.Load(src + i + 8) ^ signHi;
            a = Stride4(Stride2(Stride1(a)));
            b = Stride4(Stride2(Stride1(b)));
            var quarter = Vector256.Create(0.25f);
            ((a + b) * quarter).Store(dst + i);
            ((a - b) * quarter).Store(dst + i + 8);
        }
    }

    /// <summary>Per lane j: −0.0 (the sign bit) where bit j of <paramref name="bits"/> is set, so XOR flips the sign.</summary>
    static Vector256<float> SignMask(uint bits)
    {
        var lanes = Vector256.Create(1u, 2, 4, 8, 16, 32, 64, 128);
        var set = Vector256.Equals(Vector256.Create(bits & 0xFF) & lanes, lanes);
        return (set & Vector256.Create(0x80000000u)).AsSingle();
    }

    // Butterfly of stride h inside a vector: lane j (j mod 2h < h) gets a + b, lane j + h gets a − b, where
    // a = x[j], b = x[j + h]; the shuffle brings each lane its partner.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Butterfly(Vector256<float> v, Vector256<float> partner, Vector256<float> upper) =>
        Vector256.ConditionalSelect(upper, partner - v, v + partner);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Stride1(Vector256<float> v) => Butterfly(v, Vector256.Shuffle(v, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)),
        Vector256.Create(0, -1, 0, -1, 0, -1, 0, -1).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Stride2(Vector256<float> v) => Butterfly(v, Vector256.Shuffle(v, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5)),
        Vector256.Create(0, 0, -1, -1, 0, 0, -1, -1).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Stride4(Vector256<float> v) => Butterfly(v, Vector256.Shuffle(v, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3)),
        Vector256.Create(0, 0, 0, 0, -1, -1, -1, -1).AsSingle());

    /// <summary>Rows [r0, r1) (multiples of 16): 16 rows × 8 columns per step, the butterflies between row vectors.</summary>
    static void Columns(float* src, float* dst, int r0, int r1, int cols, uint signs)
    {
        var v = stackalloc Vector256<float>[16];
        var tmp = stackalloc float[16];
        for (int g = r0; g < r1; g += 16)
        {
            int c = 0;
            for (; c + 8 <= cols; c += 8)
            {
                float* p = src + (long)g * cols + c;
                for (int j = 0; j < 16; j++)
                {
                    var row = Vector256.Load(p + (long)j * cols);
                    v[j] = ((signs >> j) & 1) != 0 ? row ^ Vector256.Create(-0f) : row;   // a sign flip, as scalar negation (−0 included)
                }
                for (int h = 1; h < 16; h <<= 1)
                    for (int j = 0; j < 16; j++)
                        if ((j & h) == 0)
                        {
                            var a = v[j]; var b = v[j + h];
                            v[j] = a + b;
                            v[j + h] = a - b;
                        }
                float* q = dst + (long)g * cols + c;
                for (int j = 0; j < 16; j++) (v[j] * Vector256.Create(0.25f)).Store(q + (long)j * cols);
            }
            for (; c < cols; c++)
            {
                for (int j = 0; j < 16; j++) tmp[j] = src[(long)(g + j) * cols + c];
                Hadamard.Transform16(new Span<float>(tmp, 16), signs);
                for (int j = 0; j < 16; j++) dst[(long)(g + j) * cols + c] = tmp[j];
            }
        }
    }
}
