using System.Runtime.Intrinsics;
using TetraJet.Formats;
using TetraJet.Quantization.Reference;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// The CPU fast path: same contract and bits as <see cref="ReferenceQuantizer.Quantize"/>, vectorised with
/// <see cref="Vector256{T}"/> and parallel over rows (block axis last) or column tiles × row blocks (block axis first).
/// Format and rounding are struct type parameters, chosen once per call, so kernels carry no per-element branches.
/// </summary>
public static unsafe class CpuQuantizer
{
    /// <summary>Below this many elements a call stays on the calling thread: scheduling would cost more than it saves.</summary>
    public const int ParallelThreshold = 1 << 15;

    /// <summary>Tests set this to exercise the scalar fallback on machines with SIMD.</summary>
    internal static bool ForceScalar { get; set; }

    internal static bool Vectorised => Vector256.IsHardwareAccelerated && !ForceScalar;

    /// <summary>Writes Q(x) to <paramref name="y"/> (may not alias <paramref name="x"/>); arguments as <see cref="ReferenceQuantizer.Quantize"/>.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, BlockAxis axis, QuantSpec spec,
        ulong seed = 0, ulong stream = 0, ReadOnlySpan<float> ema = default, bool padBlockAxis = false)
    {
        long n = (long)rows * cols;
        if (x.Length < n || y.Length < n) throw new ArgumentException($"buffers hold {x.Length} and {y.Length} elements, the shape [{rows}, {cols}] needs {n}");
        if (spec.Rounding == Rounding.EmaGuided && ema.Length < n) throw new ArgumentException("EMA-guided rounding needs an EMA tensor of the same shape");
        ReferenceQuantizer.CheckShape(rows, cols, axis, spec, padBlockAxis);
        if (spec.Format == QuantFormat.None) { x[..(int)n].CopyTo(y); return; }
        if (n == 0) return;
        fixed (float* px = x, py = y, pe = ema)
        {
            var job = new KernelArgs(px, py, spec.Rounding == Rounding.EmaGuided ? pe : null, rows, cols, seed, stream, 0f);
            switch (spec.Rounding)
            {
                case Rounding.Stochastic: Dispatch<StochasticOps>(job, axis, spec); break;
                case Rounding.EmaGuided: Dispatch<EmaGuidedOps>(job, axis, spec); break;
                default: Dispatch<NearestOps>(job, axis, spec); break;
            }
        }
    }

    static void Dispatch<R>(KernelArgs j, BlockAxis axis, QuantSpec spec) where R : struct, IRoundingOps
    {
        switch (spec.Format)
        {
            case QuantFormat.MXFP4 when spec.ScaleRule == ScaleRule.Ocp: Mx<Mxfp4Ocp, R>(j, axis); break;
            case QuantFormat.MXFP4: Mx<Mxfp4TetraJet, R>(j, axis); break;
            case QuantFormat.MXFP8: Mx<Mxfp8, R>(j, axis); break;
            case QuantFormat.NVFP4: Nv<R>(j, axis, perTensor: false); break;
            case QuantFormat.NVFP4Tensor:
                {
                    int mb = TensorMaxBits(j);
                    long n = (long)j.Rows * j.Cols;
                    if (mb >= 0x7F800000) { KernelArgs.Fill(j.Y, n, float.NaN); return; }   // the outer scale is NaN: the whole tensor is NaN
                    var t = new KernelArgs(j.X, j.Y, j.E, j.Rows, j.Cols, j.Seed, j.Stream, ScalarCore.NvOuterScale(Bits.AsFloat((uint)mb)));
                    if (spec.Tile16)
                        Parallel2D(j.Rows / 16, 1, n, (r0, r1, _, _) => NvKernels<R>.Tiles16(t, r0 * 16, r1 * 16));
                    else
                        Nv<R>(t, axis, perTensor: true);
                    break;
                }
        }
    }

    static void Mx<F, R>(KernelArgs j, BlockAxis axis) where F : struct, IMxFormatOps where R : struct, IRoundingOps
    {
        long n = (long)j.Rows * j.Cols;
        if (axis == BlockAxis.Last)
            Parallel2D(j.Rows, 1, n, (r0, r1, _, _) => MxKernels<F, R>.Last(j, r0, r1));
        else
            Parallel2D((j.Rows + 31) / 32, (j.Cols + 31) / 32, n, (r0, r1, c0, c1) =>
                MxKernels<F, R>.First(j, r0 * 32, Math.Min(r1 * 32, j.Rows), c0 * 32, Math.Min(c1 * 32, j.Cols)));
    }

    static void Nv<R>(KernelArgs j, BlockAxis axis, bool perTensor) where R : struct, IRoundingOps
    {
        long n = (long)j.Rows * j.Cols;
        if (axis == BlockAxis.Last)
            Parallel2D(j.Rows, 1, n, (r0, r1, _, _) => NvKernels<R>.Last(j, r0, r1, perTensor));
        else
            Parallel2D((j.Rows + 127) / 128, (j.Cols + 31) / 32, n, (r0, r1, c0, c1) =>
                NvKernels<R>.First(j, r0 * 128, Math.Min(r1 * 128, j.Rows), c0 * 32, Math.Min(c1 * 32, j.Cols), perTensor));
    }

    /// <summary>Largest |x| bit pattern over the whole tensor (per-tensor NVFP4), reduced in parallel.</summary>
    static int TensorMaxBits(KernelArgs j)
    {
        long n = (long)j.Rows * j.Cols;
        int chunks = n < ParallelThreshold ? 1 : Environment.ProcessorCount * 4;
        var partial = new int[chunks];
        var x = j.X;
        Action<int> body = k => partial[k] = NvKernels<NearestOps>.MaxBits(x + n * k / chunks, n * (k + 1) / chunks - n * k / chunks);
        if (chunks == 1) body(0); else Parallel.For(0, chunks, body);
        return partial.Max();
    }

    /// <summary>
    /// Splits a grid of independent work units (row units × column units) into about 4 chunks per core and runs
    /// them in parallel; small calls run inline.
    /// </summary>
    static void Parallel2D(int rowUnits, int colUnits, long elements, Action<int, int, int, int> body)
    {
        int p = Environment.ProcessorCount;
        if (elements < ParallelThreshold || p == 1 || rowUnits * (long)colUnits <= 1)
        {
            body(0, rowUnits, 0, colUnits);
            return;
        }
        int target = p * 4;
        int colChunks = Math.Min(colUnits, target);
        int rowChunks = Math.Min(rowUnits, Math.Max(1, (target + colChunks - 1) / colChunks));
        Parallel.For(0, rowChunks * colChunks, k =>
        {
            int rc = k / colChunks, cc = k % colChunks;
            body((int)((long)rowUnits * rc / rowChunks), (int)((long)rowUnits * (rc + 1) / rowChunks),
                 (int)((long)colUnits * cc / colChunks), (int)((long)colUnits * (cc + 1) / colChunks));
        });
    }
}
