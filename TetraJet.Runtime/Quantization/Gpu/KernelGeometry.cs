namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The launch geometry of every kernel family, in one place: how many threads a launch of a family needs for a shape.
/// Both launchers (<see cref="CudaRunner"/> and <see cref="IlgpuRunner"/>) run groups of <see cref="GroupSize"/>
/// threads, so a tile kernel's group is one tile on either. The kernels' own comments say how they map threads to data.
/// </summary>
public static class KernelGeometry
{
    /// <summary>Threads per group of every launch: four warps, one tile of a tile kernel (and ILGPU's CPU accelerator in tests runs 128).</summary>
    public const int GroupSize = 128;

    /// <summary>Columns of a shared-memory tile of the first-axis kernels.</summary>
    public const int TileCols = 64;

    /// <summary>Columns of an NVFP4 first-axis tile ([128 × 32]: its FP32 tile, scales and reciprocals are 18.7 KB a group).</summary>
    public const int NvTileCols = 32;

    /// <summary>Columns of a tile of the fused dY kernels that need a whole 128-block along N per row (NVFP4, FP8 groups).</summary>
    public const int WideTileCols = 128;

    /// <summary>Rows of a first-axis tile: one MX block (32) or one NVFP4 outer block / FP8 group (128).</summary>
    public static int TileRows(QuantFormat format) => format is QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor ? 128 : 32;

    static long Ceil(long a, long b) => (a + b - 1) / b;

    /// <summary>Row kernels (features axis, FP8 rows too): a warp per 256 positions of a row.</summary>
    public static long RowThreads(int rows, int cols) => Check((long)rows * Ceil(cols, 256) * 32);

    /// <summary>
    /// The MX and NVFP4 row quantizers (<see cref="RowKernels"/>): a warp per two consecutive runs of 256 positions,
    /// counted over the rows, so each thread has two loads in flight.
    /// </summary>
    public static long RowPairThreads(int rows, int cols) => Check(Ceil((long)rows * Ceil(cols, 256), 2) * 32);

    /// <summary>The NVFP4 row quantizer (<see cref="RowKernels.Nv"/>): a warp per 512 positions of a row, an inner block per lane.</summary>
    public static long Row16Threads(int rows, int cols) => Check((long)rows * Ceil(cols, 512) * 32);

    /// <summary>16×16 per-tensor NVFP4 tiles: a thread per (16-row band, 8 columns).</summary>
    public static long Tile16Threads(int rows, int cols) => Check((long)(rows / 16) * (cols / 8));

    /// <summary>First-axis kernels (plain or from storage): a group per [32 × 64] (MX) or [128 × 32] (NVFP4) tile.</summary>
    public static long ColumnThreads(QuantFormat format, int rows, int cols)
    {
        int tileRows = TileRows(format);
        return Tiles(rows, tileRows, cols, tileRows == 128 ? NvTileCols : TileCols);
    }

    /// <summary>Fused dY kernels: a group per [32 × 64] tile (MXFP4) or per [128 × 128] region (NVFP4).</summary>
    public static long DualThreads(QuantFormat format, int rows, int cols) => format == QuantFormat.NVFP4
        ? Tiles(rows, 128, cols, WideTileCols)
        : Tiles(rows, 32, cols, TileCols);

    /// <summary>FP8 first-axis kernels: a group per [128 × 32] tile of the padded rows.</summary>
    public static long Fp8ColumnThreads(int paddedRows, int cols) => Tiles(paddedRows, 128, cols, Fp8ColumnKernels.Cols);

    /// <summary>The fused FP8 dY kernel: a group per [128 × 128] region of the padded rows.</summary>
    public static long Fp8DualThreads(int paddedRows, int cols) => Tiles(paddedRows, 128, cols, WideTileCols);

    /// <summary>
    /// The FP8 patch kernel: a fixed grid (it never depends on the flag count, which only the device knows), grid-striding
    /// over its work; four groups per SM of a 132-SM GPU, so a warp's dot product, bound by load latency, has company.
    /// </summary>
    public const long PatchThreads = 528L * GroupSize;

    /// <summary>Per-tensor amax of x: a grid-stride pass, a thread per 8 elements up to 2^20 threads.</summary>
    public static long AmaxThreads(long count) => Math.Max(1, Math.Min(Ceil(count, 8), 1L << 20));

    /// <summary>Per-tensor amax after the RHT along the last axis: the row kernels' layout.</summary>
    public static long AmaxRowThreads(int rows, int cols) => RowThreads(rows, cols);

    /// <summary>Per-tensor amax after the RHT along the first axis: a thread per (column, 16 rows).</summary>
    public static long AmaxColumnThreads(int rows, int cols) => Check((long)cols * Ceil(rows, 16));

    /// <summary>A row broadcast over a matrix (<see cref="BroadcastKernels"/>): a thread per 16-byte unit.</summary>
    public static long BroadcastThreads(long units) => Check(units);

    /// <summary>
    /// The oscillation report's step (<see cref="OscillationKernels"/>): a grid-stride pass, a thread per element up to
    /// 2^18 threads (about a full H100 at 16 groups per SM), so the flip counts meet in a few thousand atomics.
    /// </summary>
    public static long OscillationThreads(long count) => Math.Max(1, Math.Min(count, 1L << 18));

    /// <summary>A kernel whose work is one thread's (the oscillation report's accumulation): one group, thread 0 works.</summary>
    public const long OneThread = 1;

    /// <summary>Unpack kernels: a thread per 8 elements.</summary>
    public static long UnpackThreads(long count) => Check(Ceil(count, 8));

    // ---------------------------------------------------------------- per quantizer, as both launchers use them

    /// <summary>A features-axis quantizer of <paramref name="spec"/> on [rows, cols].</summary>
    public static long Rows(QuantSpec spec, int rows, int cols) =>
        spec.Tile16 ? Tile16Threads(rows, cols)
        : spec.Format is QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor ? Row16Threads(rows, cols)
        : RowPairThreads(rows, cols);

    /// <summary>A first-axis quantizer of <paramref name="spec"/> on [rows, cols] (rows: the rows written, padding included).</summary>
    public static long Columns(QuantSpec spec, int rows, int cols) => ColumnThreads(spec.Format, rows, cols);

    /// <summary>The fused dY quantizer of <paramref name="spec"/> on dY [rows, cols].</summary>
    public static long Dual(QuantSpec spec, int rows, int cols) => DualThreads(spec.Format, rows, cols);

    /// <summary>The per-tensor amax pass before a quantizer along <paramref name="axis"/>, with or without the RHT.</summary>
    public static long Amax(BlockAxis axis, bool hadamard, int rows, int cols) =>
        !hadamard ? AmaxThreads((long)rows * cols) : axis == BlockAxis.Last ? AmaxRowThreads(rows, cols) : AmaxColumnThreads(rows, cols);

    static long Tiles(int rows, int tileRows, int cols, int tileCols) => Check(Ceil(rows, tileRows) * Ceil(cols, tileCols) * GroupSize);

    /// <summary>Kernels index threads in 32 bits.</summary>
    static long Check(long threads) => threads < int.MaxValue - GroupSize ? threads
        : throw new ArgumentException($"a launch of {threads} threads is too large (kernels index threads in 32 bits)");
}
