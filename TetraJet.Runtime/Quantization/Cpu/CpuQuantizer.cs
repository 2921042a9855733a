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
        => Prepare(spec, axis).Run(x, y, rows, cols, seed, stream, ema, padBlockAxis);

    /// <summary>The kernel of <paramref name="spec"/> along <paramref name="axis"/>, selected once; run it with <see cref="CpuKernel.Run"/>.</summary>
    public static CpuKernel Prepare(QuantSpec spec, BlockAxis axis) => new(spec, axis, spec.Format == QuantFormat.None ? null : Select(spec, axis));

    /// <summary>A kernel over rows [r0, r1) × columns [c0, c1) of one call (ranges aligned to its blocks).</summary>
    internal delegate void Body(KernelArgs j, int r0, int r1, int c0, int c1);

    /// <summary>Runs a prepared kernel: per-tensor NVFP4's amax pass first, then the blocks in parallel.</summary>
    internal static void Run(Body body, KernelArgs j, BlockAxis axis, QuantSpec spec)
    {
        long n = (long)j.Rows * j.Cols;
        if (spec.Format == QuantFormat.NVFP4Tensor)
        {
            int mb = TensorMaxBits(j);
            if (mb >= 0x7F800000) { KernelArgs.Fill(j.Y, n, float.NaN); return; }   // the outer scale is NaN: the whole tensor is NaN
            j = j.WithTensorOuter(ScalarCore.NvOuterScale(Bits.AsFloat((uint)mb)));
            if (spec.Tile16)
            {
                var t = j;
                Parallel2D(j.Rows / 16, 1, n, (r0, r1, _, _) => body(t, r0 * 16, r1 * 16, 0, 0));
                return;
            }
        }
        var k = j;
        if (axis == BlockAxis.Last)
            Parallel2D(j.Rows, 1, n, (r0, r1, _, _) => body(k, r0, r1, 0, k.Cols));
        else
        {
            // Row units of a whole outer block (NVFP4) or block (MX); column units of one 32-column tile.
            int unit = spec.Format is QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor ? 128 : 32;
            Parallel2D((j.Rows + unit - 1) / unit, (j.Cols + 31) / 32, n, (r0, r1, c0, c1) =>
                body(k, r0 * unit, Math.Min(r1 * unit, k.Rows), c0 * 32, Math.Min(c1 * 32, k.Cols)));
        }
    }

    /// <summary>The kernel specialised for a format, rounding and axis: the one place where the format is looked at.</summary>
    static Body Select<R>(QuantSpec spec, BlockAxis axis) where R : struct, IRoundingOps
    {
        bool last = axis == BlockAxis.Last;
        return spec.Format switch
        {
            QuantFormat.MXFP4 when spec.ScaleRule == ScaleRule.Ocp => last ? MxKernels<Mxfp4Ocp, R>.Last : MxKernels<Mxfp4Ocp, R>.First,
            QuantFormat.MXFP4 => last ? MxKernels<Mxfp4TetraJet, R>.Last : MxKernels<Mxfp4TetraJet, R>.First,
            QuantFormat.MXFP8 => last ? MxKernels<Mxfp8, R>.Last : MxKernels<Mxfp8, R>.First,
            QuantFormat.NVFP4 => last
                ? (j, r0, r1, c0, c1) => NvKernels<R>.Last(j, r0, r1, c0, c1, perTensor: false)
                : (j, r0, r1, c0, c1) => NvKernels<R>.First(j, r0, r1, c0, c1, perTensor: false),
            QuantFormat.NVFP4Tensor when spec.Tile16 => (j, r0, r1, _, _) => NvKernels<R>.Tiles16(j, r0, r1),
            QuantFormat.NVFP4Tensor => last
                ? (j, r0, r1, c0, c1) => NvKernels<R>.Last(j, r0, r1, c0, c1, perTensor: true)
                : (j, r0, r1, c0, c1) => NvKernels<R>.First(j, r0, r1, c0, c1, perTensor: true),
            _ => throw new ArgumentException($"no CPU kernel for {spec}"),
        };
    }

    static Body Select(QuantSpec spec, BlockAxis axis) => spec.Rounding switch
    {
        Rounding.Stochastic => Select<StochasticOps>(spec, axis),
        Rounding.EmaGuided => Select<EmaGuidedOps>(spec, axis),
        _ => Select<NearestOps>(spec, axis),
    };

    /// <summary>
    /// The backward pair of a linear layer in one pass over dY (Q3 and Q5 of ALGORITHMS.md §4): writes
    /// <paramref name="yLast"/> = Q(x) with blocks along the last axis and <paramref name="yFirst"/> = Q(x) with blocks
    /// along the first axis, bit for bit what two <see cref="Quantize"/> calls give. The tensor is walked in tiles of
    /// 128 rows × 256 columns, each quantized both ways while it is in cache, so x is read from memory once.
    /// </summary>
    /// <remarks>Nearest or stochastic rounding; no 16×16 tiles (those serve weights, not dY).</remarks>
    public static void QuantizeBothAxes(ReadOnlySpan<float> x, Span<float> yLast, Span<float> yFirst, int rows, int cols,
        QuantSpec specLast, QuantSpec specFirst, ulong seed, ulong streamLast, ulong streamFirst, bool padFirst = false)
    {
        long n = (long)rows * cols;
        if (x.Length < n || yLast.Length < n || yFirst.Length < n)
            throw new ArgumentException($"buffers hold {x.Length}, {yLast.Length} and {yFirst.Length} elements, the shape [{rows}, {cols}] needs {n}");
        foreach (var s in new[] { specLast, specFirst })
            if (s.Rounding == Rounding.EmaGuided || s.Tile16 || s.Format == QuantFormat.None)
                throw new ArgumentException($"the fused pair takes block formats with nearest or stochastic rounding and 1-D blocks, got {s}");
        ReferenceQuantizer.CheckShape(rows, cols, BlockAxis.Last, specLast, false, "Q(x) along the last axis");
        ReferenceQuantizer.CheckShape(rows, cols, BlockAxis.First, specFirst, padFirst, "Q(x) along the first axis");
        if (n == 0) return;
        fixed (float* px = x, pl = yLast, pf = yFirst)
        {
            var jl = new KernelArgs(px, pl, null, rows, cols, seed, streamLast, 0f);
            var jf = new KernelArgs(px, pf, null, rows, cols, seed, streamFirst, 0f);
            bool skipLast = false, skipFirst = false;
            if (specLast.Format == QuantFormat.NVFP4Tensor || specFirst.Format == QuantFormat.NVFP4Tensor)
            {
                int mb = TensorMaxBits(jl);
                float so = ScalarCore.NvOuterScale(Bits.AsFloat((uint)mb));
                if (specLast.Format == QuantFormat.NVFP4Tensor)
                {
                    if (mb >= 0x7F800000) { KernelArgs.Fill(pl, n, float.NaN); skipLast = true; }
                    jl = jl.WithTensorOuter(so);
                }
                if (specFirst.Format == QuantFormat.NVFP4Tensor)
                {
                    if (mb >= 0x7F800000) { KernelArgs.Fill(pf, n, float.NaN); skipFirst = true; }
                    jf = jf.WithTensorOuter(so);
                }
            }
            Body last = Select(specLast, BlockAxis.Last), first = Select(specFirst, BlockAxis.First);
            const int TileRows = 128, TileCols = 256;
            Parallel2D((rows + TileRows - 1) / TileRows, (cols + TileCols - 1) / TileCols, n, (tr0, tr1, tc0, tc1) =>
            {
                for (int tr = tr0; tr < tr1; tr++)
                    for (int tc = tc0; tc < tc1; tc++)
                    {
                        int r0 = tr * TileRows, r1 = Math.Min(r0 + TileRows, rows), c0 = tc * TileCols, c1 = Math.Min(c0 + TileCols, cols);
                        if (!skipLast) last(jl, r0, r1, c0, c1);
                        if (!skipFirst) first(jf, r0, r1, c0, c1);
                    }
            });
        }
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
