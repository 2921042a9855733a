using ILGPU;
using ILGPU.Runtime;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// An FP8 GEMM operand as a kernel wrote it (<see cref="Fp8Operand"/>), copied to the host: codes and group scales in
/// the operand's layout, the flagged lines (each once, in list order), the side copy (zeros where the kernel wrote nothing),
/// and the MXFP4 storage form when the kernel stores it (else empty).
/// </summary>
public sealed record Fp8Result<T>(byte[] Codes8, float[] Scales8, int[] Flags, T[] Side, byte[] Codes, byte[] Scales, int Rows, int Length)
    where T : unmanaged;

public static partial class GpuQuantizer
{
    static bool IsBf16<T>() => typeof(T) == typeof(ushort) ? true
        : typeof(T) == typeof(float) ? false : throw new ArgumentException($"elements are float32 or bfloat16 bits (ushort), not {typeof(T).Name}");

    /// <summary>
    /// The FP8 row kernel of <paramref name="spec"/> (MXFP4) on x [rows, cols] (float32, or bfloat16 bits as ushort): the
    /// operand [rows, cols] with rows' group scales; with <paramref name="store"/> also the MXFP4 storage form.
    /// </summary>
    public static Fp8Result<T> Fp8Rows<T>(Accelerator acc, QuantSpec spec, T[] x, int rows, int cols, bool store = false,
        ulong seed = 0, ulong stream = 0, float[]? ema = null) where T : unmanaged
    {
        if (cols % 32 != 0) throw new ArgumentException($"FP8 rows need cols a multiple of 32, got {cols}");
        int n = checked(rows * cols), groups = (cols + Fp8Operand.GroupLength - 1) / Fp8Operand.GroupLength;
        using var xb = acc.Allocate1D(x);
        using var eb = acc.Allocate1D(ema ?? new float[1]);
        using var c8 = acc.Allocate1D<byte>(Math.Max(1, n));
        using var s8 = acc.Allocate1D<float>(Math.Max(1, groups * rows));
        using var fb = acc.Allocate1D<int>(Fp8Operand.FlagLength(rows));
        using var sd = acc.Allocate1D<T>(Math.Max(1, n));
        using var cb = acc.Allocate1D<byte>(Math.Max(1, n / 2));
        using var sb = acc.Allocate1D<byte>(Math.Max(1, n / 32));
        fb.MemSetToZero();
        sd.MemSetToZero();
        if (n > 0)
            new IlgpuRunner(acc).Launch(LibraryKernels.Fp8Rows(spec, store).For(IsBf16<T>()), KernelGeometry.RowThreads(rows, cols),
                V(xb), V(eb), V(c8), V(s8), V(fb), V(sd), V(cb), V(sb), rows, cols, seed, stream);
        acc.Synchronize();
        return new(c8.GetAsArray1D()[..n], s8.GetAsArray1D()[..(groups * rows)], Fp8Operand.Entries(fb.GetAsArray1D()), sd.GetAsArray1D()[..n],
            store ? cb.GetAsArray1D()[..(n / 2)] : [], store ? sb.GetAsArray1D()[..(n / 32)] : [], rows, cols);
    }

    /// <summary>Rows of the transposed operand padded to a multiple of the group.</summary>
    public static int PaddedRows(int rows) => (rows + Fp8Operand.GroupLength - 1) / Fp8Operand.GroupLength * Fp8Operand.GroupLength;

    /// <summary>The FP8 first-axis kernel of <paramref name="spec"/> on x [rows, cols]: the transposed operand [cols, paddedRows].</summary>
    public static Fp8Result<T> Fp8Columns<T>(Accelerator acc, QuantSpec spec, T[] x, int rows, int cols, ulong seed = 0, ulong stream = 0,
        float[]? ema = null) where T : unmanaged
    {
        int padded = PaddedRows(rows);
        using var xb = acc.Allocate1D(x.Length == 0 ? new T[1] : x);
        using var eb = acc.Allocate1D(ema ?? new float[1]);
        return Columns<T>(acc, padded, cols, rows, (runner, c8, s8, fb, sd) =>
            runner.Launch(LibraryKernels.Fp8Columns(spec).For(IsBf16<T>()), KernelGeometry.Fp8ColumnThreads(padded, cols),
                V(xb), V(eb), c8, s8, fb, sd, rows, cols, padded, seed, stream));
    }

    /// <summary>The FP8 first-axis kernel of <paramref name="target"/> reading an MXFP4 storage form of a [rows, cols] operand.</summary>
    public static Fp8Result<T> Fp8StoredColumns<T>(Accelerator acc, QuantSpec source, QuantSpec target, byte[] codes, byte[] scales, int rows, int cols,
        ulong seed = 0, ulong stream = 0) where T : unmanaged
    {
        int padded = PaddedRows(rows);
        using var cb = acc.Allocate1D(codes.Length == 0 ? new byte[1] : codes);
        using var sb = acc.Allocate1D(scales.Length == 0 ? new byte[1] : scales);
        return Columns<T>(acc, padded, cols, rows, (runner, c8, s8, fb, sd) =>
            runner.Launch(LibraryKernels.Fp8StoredColumns(source, target).For(IsBf16<T>()), KernelGeometry.Fp8ColumnThreads(padded, cols),
                V(cb), V(sb), c8, s8, fb, sd, rows, cols, padded, seed, stream));
    }

    static Fp8Result<T> Columns<T>(Accelerator acc, int padded, int cols, int rows,
        Action<IlgpuRunner, ArrayView<byte>, ArrayView<float>, ArrayView<int>, ArrayView<T>> launch) where T : unmanaged
    {
        int n = checked(padded * cols), groups = padded / Fp8Operand.GroupLength;
        using var c8 = acc.Allocate1D<byte>(Math.Max(1, n));
        using var s8 = acc.Allocate1D<float>(Math.Max(1, groups * cols));
        using var fb = acc.Allocate1D<int>(Fp8Operand.FlagLength(cols));
        using var sd = acc.Allocate1D<T>(Math.Max(1, n));
        fb.MemSetToZero();
        sd.MemSetToZero();
        if (n > 0) launch(new IlgpuRunner(acc), c8.View, s8.View, fb.View, sd.View);
        acc.Synchronize();
        return new(c8.GetAsArray1D()[..n], s8.GetAsArray1D()[..(groups * cols)], Fp8Operand.Entries(fb.GetAsArray1D()), sd.GetAsArray1D()[..n], [], [], cols, padded);
    }

    /// <summary>The fused FP8 dY kernel: Q3's operand along N ([rows, cols]) and Q5's transposed operand along T ([cols, paddedRows]).</summary>
    public static (Fp8Result<T> Q3, Fp8Result<T> Q5) Fp8Dual<T>(Accelerator acc, QuantSpec spec, T[] x, int rows, int cols,
        ulong seed, ulong stream3, ulong stream5) where T : unmanaged
    {
        if (cols % 32 != 0) throw new ArgumentException($"dY: N must be a multiple of 32, got {cols}");
        int n = checked(rows * cols), padded = PaddedRows(rows), n5 = checked(padded * cols);
        int groups3 = (cols + 127) / 128, groups5 = padded / 128;
        using var xb = acc.Allocate1D(x.Length == 0 ? new T[1] : x);
        using var c3 = acc.Allocate1D<byte>(Math.Max(1, n));
        using var s3 = acc.Allocate1D<float>(Math.Max(1, groups3 * rows));
        using var f3 = acc.Allocate1D<int>(Fp8Operand.FlagLength(rows));
        using var d3 = acc.Allocate1D<T>(Math.Max(1, n));
        using var c5 = acc.Allocate1D<byte>(Math.Max(1, n5));
        using var s5 = acc.Allocate1D<float>(Math.Max(1, groups5 * cols));
        using var f5 = acc.Allocate1D<int>(Fp8Operand.FlagLength(cols));
        using var d5 = acc.Allocate1D<T>(Math.Max(1, n5));
        f3.MemSetToZero(); d3.MemSetToZero(); f5.MemSetToZero(); d5.MemSetToZero();
        if (n > 0)
            new IlgpuRunner(acc).Launch(LibraryKernels.Fp8Dual(spec).For(IsBf16<T>()), KernelGeometry.Fp8DualThreads(padded, cols),
                V(xb), V(c3), V(s3), V(f3), V(d3), V(c5), V(s5), V(f5), V(d5), rows, cols, padded, seed, stream3, stream5);
        acc.Synchronize();
        return (new(c3.GetAsArray1D()[..n], s3.GetAsArray1D()[..(groups3 * rows)], Fp8Operand.Entries(f3.GetAsArray1D()), d3.GetAsArray1D()[..n], [], [], rows, cols),
            new(c5.GetAsArray1D()[..n5], s5.GetAsArray1D()[..(groups5 * cols)], Fp8Operand.Entries(f5.GetAsArray1D()), d5.GetAsArray1D()[..n5], [], [], cols, padded));
    }

    /// <summary>
    /// The patch kernel on D [m, n] (initial contents <paramref name="d"/>) for D = A·Bᵀ (+ <paramref name="bias"/>) with A,
    /// B FP8 operands over a reduction of <paramref name="k"/> (their Length is the leading dimension); returns D with the
    /// flagged rows and columns rewritten. With <paramref name="counters"/> the flag counts are added to entries 1 (A) and 2 (B).
    /// </summary>
    public static T[] Fp8Patch<T>(Accelerator acc, Fp8Result<T> a, Fp8Result<T> b, T[] d, int k, T[]? bias = null, long[]? counters = null) where T : unmanaged
    {
        int m = a.Rows, n = b.Rows;
        if (d.Length != m * n) throw new ArgumentException($"D holds {d.Length} elements, [{m}, {n}] needs {m * n}");
        using var ca = acc.Allocate1D(Nonempty(a.Codes8));
        using var sa = acc.Allocate1D(Nonempty(a.Scales8));
        using var fa = acc.Allocate1D(Fp8Operand.Buffer(a.Rows, a.Flags));
        using var da = acc.Allocate1D(Nonempty(a.Side));
        using var cb = acc.Allocate1D(Nonempty(b.Codes8));
        using var sb = acc.Allocate1D(Nonempty(b.Scales8));
        using var fb = acc.Allocate1D(Fp8Operand.Buffer(b.Rows, b.Flags));
        using var db = acc.Allocate1D(Nonempty(b.Side));
        using var dd = acc.Allocate1D(Nonempty(d));
        using var bb = acc.Allocate1D(Nonempty(bias ?? []));
        using var cc = acc.Allocate1D(Nonempty(counters ?? []));
        new IlgpuRunner(acc).Launch(LibraryKernels.Fp8Patch().For(IsBf16<T>()), KernelGeometry.PatchThreads,
            V(ca), V(sa), V(fa), V(da), V(cb), V(sb), V(fb), V(db), V(dd),
            bias is null ? V(bb).SubView(0, 0) : V(bb), counters is null ? V(cc).SubView(0, 0) : V(cc), m, n, k, a.Length, b.Length, 1, 2);
        acc.Synchronize();
        if (counters is not null) cc.GetAsArray1D().AsSpan(0, counters.Length).CopyTo(counters);
        return dd.GetAsArray1D()[..d.Length];
    }

    /// <summary><paramref name="row"/> repeated <paramref name="rows"/> times by the broadcast kernel (its length times the element size a multiple of 16 bytes).</summary>
    public static T[] BroadcastRows<T>(Accelerator acc, T[] row, int rows) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (row.Length * size % 16 != 0) throw new ArgumentException($"a row of {row.Length} elements of {size} bytes is not a whole number of 16-byte units");
        int rowUnits = row.Length * size / 16, units = checked(rows * rowUnits);
        using var rb = acc.Allocate1D(Nonempty(row));
        using var db = acc.Allocate1D<T>(Math.Max(1, rows * row.Length));
        if (units > 0)
            new IlgpuRunner(acc).Launch(LibraryKernels.BroadcastRows, KernelGeometry.BroadcastThreads(units),
                V(rb).Cast<Bytes16>(), V(db).Cast<Bytes16>(), rowUnits, units);
        acc.Synchronize();
        return db.GetAsArray1D()[..(rows * row.Length)];
    }

    static TE[] Nonempty<TE>(TE[] a) where TE : unmanaged => a.Length == 0 ? new TE[1] : a;

}
