using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// One FP8 GEMM operand on the device (<see cref="Fp8Operand"/>): codes uint8 [lines, length], group scales float32
/// [length/128 rounded up, lines] (group-major), the flags int32 [1 + 2·lines] (count, marks, list), the side copy
/// [lines, length] in the operand's dtype (only flagged lines are written). For a row operand lines = rows and length
/// = cols; for a transposed (first-axis) operand lines = cols and length = the padded rows.
/// </summary>
public sealed class Fp8Tensors : IDisposable
{
    internal Fp8Tensors(Tensor codes, Tensor scales, Tensor flags, Tensor side, int lines, int length) =>
        (Codes8, Scales8, Flags, Side, Lines, Length) = (codes, scales, flags, side, lines, length);

    public Tensor Codes8 { get; }
    public Tensor Scales8 { get; }
    public Tensor Flags { get; }
    public Tensor Side { get; }
    public int Lines { get; }
    /// <summary>Elements per line along the reduction axis: the leading dimension of <see cref="Codes8"/> and <see cref="Side"/>.</summary>
    public int Length { get; }

    /// <summary>Empty buffers for a [lines, length] operand of <paramref name="dtype"/>; the flag count and marks are zeroed by the launch.</summary>
    public static Fp8Tensors Allocate(int lines, int length, ScalarType dtype, Device device)
    {
        long groups = (length + Fp8Operand.GroupLength - 1) / Fp8Operand.GroupLength;
        return new(empty(new long[] { lines, length }, ScalarType.Byte, device), empty(new long[] { groups, lines }, ScalarType.Float32, device),
            empty(new long[] { Fp8Operand.FlagLength(lines) }, ScalarType.Int32, device), empty(new long[] { lines, length }, dtype, device), lines, length);
    }

    /// <summary>The flagged line indices (copies the list to the host: checks and statistics, not the training step).</summary>
    public int[] FlaggedLines() => Fp8Operand.Entries(Flags.cpu().data<int>().ToArray());

    public Fp8Tensors MoveToOuterDisposeScope()
    {
        Codes8.MoveToOuterDisposeScope(); Scales8.MoveToOuterDisposeScope(); Flags.MoveToOuterDisposeScope(); Side.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Codes8.Dispose(); Scales8.Dispose(); Flags.Dispose(); Side.Dispose();
    }
}

/// <summary>How <see cref="Fp8SelfCheck"/> runs the FP8 operand kernels: on CUDA tensors (<see cref="CudaFp8"/>), or elsewhere for its own tests.</summary>
public interface IFp8Launcher
{
    Fp8Tensors Rows(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema, PackedTensor? stored);
    Fp8Tensors Columns(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema);
    Fp8Tensors StoredColumns(PackedTensor source, QuantSpec target, ulong seed, ulong stream);
    (Fp8Tensors Q3, Fp8Tensors Q5) Dual(Tensor dy, QuantSpec spec, ulong seed, ulong stream3, ulong stream5);
    void Patch(Tensor d, Fp8Tensors a, Fp8Tensors b, int k, Tensor? bias = null);
}

/// <summary>
/// The FP8 operand kernels launched in place on torch CUDA memory, in torch's context and on its default stream (no
/// synchronisation, no host round trip), with the library's instantiations unless a generated plan passes its own.
/// Geometry: <see cref="KernelGeometry"/>. What a GEMM backend calls; the GEMM itself is not here.
/// </summary>
public static class CudaFp8
{
    static bool Bf16(Tensor t) => t.dtype == ScalarType.BFloat16;

    static Tensor Input(Tensor x, string what, bool lastAxis)
    {
        if (x.device_type != DeviceType.CUDA || x.dim() != 2) throw new ArgumentException($"{what}: expected a 2-D CUDA tensor, got {x.dim()}-D on {x.device}");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16) throw new ArgumentException($"{what}: expected float32 or bfloat16, got {x.dtype}");
        if (lastAxis && x.size(1) % 32 != 0) throw new ArgumentException($"{what}: the reduction axis ({x.size(1)}) must be a multiple of 32");
        if (x.size(0) > int.MaxValue / 2 || x.size(1) > int.MaxValue / 2) throw new ArgumentException($"{what}: [{x.size(0)}, {x.size(1)}] is too large");
        return DeviceTensors.Aligned(x);
    }

    static DeviceView View(Tensor t) => DeviceTensors.View(t);

    static KernelArg[] Outputs(CudaRunner runner, Fp8Tensors o)
    {
        runner.Zero(View(o.Flags), 1 + o.Lines);
        return [KernelArg.View(View(o.Codes8)), KernelArg.View(View(o.Scales8)), KernelArg.View(View(o.Flags)), KernelArg.View(View(o.Side))];
    }

    /// <summary>x [rows, cols] along its last axis (Q1, Q2, Q3); with <paramref name="stored"/> (PackedTensor.Allocate of the spec) also its MXFP4 storage form.</summary>
    public static Fp8Tensors Rows(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema = null, PackedTensor? stored = null, GpuKernel? kernel = null)
    {
        using var scope = NewDisposeScope();
        var x2 = Input(x, "x", lastAxis: true);
        int rows = (int)x2.size(0), cols = (int)x2.size(1);
        var o = Fp8Tensors.Allocate(rows, cols, x2.dtype, x2.device);
        var runner = DeviceTensors.Runner(x2.device);
        var outs = Outputs(runner, o);
        var k = kernel ?? LibraryKernels.Fp8Rows(spec, stored is not null);
        if (x2.numel() > 0)
            runner.Launch(k.For(Bf16(x2)), KernelGeometry.RowThreads(rows, cols),
            [
                KernelArg.View(View(x2)), KernelArg.View(Ema(ema, spec, x2)), .. outs,
                KernelArg.View(stored is null ? DeviceView.None : View(stored.Codes)), KernelArg.View(stored is null ? DeviceView.None : View(stored.Scales)),
                KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Key(seed), KernelArg.ULong(stream),
            ]);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>x [rows, cols] along its first axis (Q5 from dY), transposed: lines = cols, length = rows padded to 128.</summary>
    public static Fp8Tensors Columns(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema = null, GpuKernel? kernel = null)
    {
        using var scope = NewDisposeScope();
        var x2 = Input(x, "x", lastAxis: false);
        int rows = (int)x2.size(0), cols = (int)x2.size(1), padded = PaddedRows(rows);
        var o = Fp8Tensors.Allocate(cols, padded, x2.dtype, x2.device);
        var runner = DeviceTensors.Runner(x2.device);
        var outs = Outputs(runner, o);
        if (x2.numel() > 0)
            runner.Launch((kernel ?? LibraryKernels.Fp8Columns(spec)).For(Bf16(x2)), KernelGeometry.Fp8ColumnThreads(padded, cols),
                [KernelArg.View(View(x2)), KernelArg.View(Ema(ema, spec, x2)), .. outs, KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Int(padded),
                 KernelArg.Key(seed), KernelArg.ULong(stream)]);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>An operand kept in MXFP4 storage along its last axis (Q4 from Ŵ, Q6 from X̂), along its first axis, transposed.</summary>
    public static Fp8Tensors StoredColumns(PackedTensor source, QuantSpec target, ulong seed, ulong stream, GpuKernel? kernel = null)
    {
        if (source.Device.type != DeviceType.CUDA || source.Axis != BlockAxis.Last) throw new ArgumentException("expected last-axis storage on a CUDA device");
        using var scope = NewDisposeScope();
        int rows = source.Rows, cols = source.Cols, padded = PaddedRows(rows);
        var o = Fp8Tensors.Allocate(cols, padded, source.DType, source.Device);
        var runner = DeviceTensors.Runner(source.Device);
        var outs = Outputs(runner, o);
        if (source.Count > 0)
            runner.Launch((kernel ?? LibraryKernels.Fp8StoredColumns(source.Spec, target)).For(source.DType == ScalarType.BFloat16), KernelGeometry.Fp8ColumnThreads(padded, cols),
                [KernelArg.View(View(source.Codes)), KernelArg.View(View(source.Scales)), .. outs, KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Int(padded),
                 KernelArg.Key(seed), KernelArg.ULong(stream)]);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>dY [T, N] read once: Q3's operand along N and Q5's transposed operand along T.</summary>
    public static (Fp8Tensors Q3, Fp8Tensors Q5) Dual(Tensor dy, QuantSpec spec, ulong seed, ulong stream3, ulong stream5, GpuKernel? kernel = null)
    {
        using var scope = NewDisposeScope();
        var x2 = Input(dy, "dY", lastAxis: true);
        int rows = (int)x2.size(0), cols = (int)x2.size(1), padded = PaddedRows(rows);
        var q3 = Fp8Tensors.Allocate(rows, cols, x2.dtype, x2.device);
        var q5 = Fp8Tensors.Allocate(cols, padded, x2.dtype, x2.device);
        var runner = DeviceTensors.Runner(x2.device);
        var o3 = Outputs(runner, q3);
        var o5 = Outputs(runner, q5);
        if (x2.numel() > 0)
            runner.Launch((kernel ?? LibraryKernels.Fp8Dual(spec)).For(Bf16(x2)), KernelGeometry.Fp8DualThreads(padded, cols),
                [KernelArg.View(View(x2)), .. o3, .. o5, KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Int(padded),
                 KernelArg.Key(seed), KernelArg.ULong(stream3), KernelArg.ULong(stream5)]);
        return (q3.MoveToOuterDisposeScope(), q5.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// After an FP8 GEMM D [m, n] = A·Bᵀ (+ bias) over <paramref name="k"/> reduction elements: rewrites D's rows of A's
    /// flagged lines and columns of B's flagged lines exactly, adding <paramref name="bias"/> (length n, D's dtype) where
    /// the GEMM added it. With <paramref name="counters"/> (int64, on D's device) the two flag counts are added to
    /// entries <paramref name="slotA"/> and <paramref name="slotB"/>. Always launched; it reads the counts on the device.
    /// </summary>
    public static void Patch(Tensor d, Fp8Tensors a, Fp8Tensors b, int k, Tensor? bias = null, Tensor? counters = null, int slotA = 0, int slotB = 0,
        GpuKernel? kernel = null)
    {
        if (d.device_type != DeviceType.CUDA || !d.is_contiguous() || d.dim() != 2 || d.size(0) != a.Lines || d.size(1) != b.Lines)
            throw new ArgumentException($"D must be a contiguous CUDA [{a.Lines}, {b.Lines}] tensor, got [{string.Join(", ", d.shape)}] on {d.device}");
        if (d.dtype != a.Side.dtype || d.dtype != b.Side.dtype) throw new ArgumentException($"D ({d.dtype}) and the operands ({a.Side.dtype}, {b.Side.dtype}) must share a dtype");
        if (k > a.Length || k > b.Length || a.Length % 4 != 0 || b.Length % 4 != 0) throw new ArgumentException($"k = {k} with operands of length {a.Length} and {b.Length}");
        if (bias is not null && (bias.dtype != d.dtype || !bias.is_contiguous() || bias.numel() != b.Lines || bias.device_type != DeviceType.CUDA))
            throw new ArgumentException($"the bias must be a contiguous CUDA {d.dtype} tensor of {b.Lines} elements");
        if (counters is not null && (counters.dtype != ScalarType.Int64 || counters.device_type != DeviceType.CUDA || Math.Max(slotA, slotB) >= counters.numel()))
            throw new ArgumentException("the counters must be an int64 CUDA tensor holding both slots");
        DeviceTensors.Runner(d.device).Launch((kernel ?? LibraryKernels.Fp8Patch()).For(Bf16(d)), KernelGeometry.PatchThreads,
        [
            KernelArg.View(View(a.Codes8)), KernelArg.View(View(a.Scales8)), KernelArg.View(View(a.Flags)), KernelArg.View(View(a.Side)),
            KernelArg.View(View(b.Codes8)), KernelArg.View(View(b.Scales8)), KernelArg.View(View(b.Flags)), KernelArg.View(View(b.Side)),
            KernelArg.View(View(d)), KernelArg.View(bias is null ? DeviceView.None : View(bias)), KernelArg.View(counters is null ? DeviceView.None : View(counters)),
            KernelArg.Int(a.Lines), KernelArg.Int(b.Lines), KernelArg.Int(k), KernelArg.Int(a.Length), KernelArg.Int(b.Length), KernelArg.Int(slotA), KernelArg.Int(slotB),
        ]);
    }

    /// <summary>
    /// A new [<paramref name="rows"/>, n] tensor with every row equal to <paramref name="row"/> (a CUDA vector of n
    /// elements, n·size a multiple of 16 bytes): the C of a GEMM that adds a bias (<see cref="BroadcastKernels"/>).
    /// </summary>
    public static Tensor BroadcastRows(Tensor row, long rows)
    {
        long bytes = row.numel() * row.element_size();
        if (row.device_type != DeviceType.CUDA || row.dim() != 1 || bytes % 16 != 0)
            throw new ArgumentException($"the row must be a CUDA vector of a multiple of 16 bytes, got [{string.Join(", ", row.shape)}] {row.dtype} on {row.device}");
        var r = DeviceTensors.Aligned(row);
        var d = empty(new[] { rows, row.numel() }, row.dtype, row.device);
        long units = rows * (bytes / 16);
        if (units > 0)
            DeviceTensors.Runner(d.device).Launch(LibraryKernels.BroadcastRows, KernelGeometry.BroadcastThreads(units),
            [
                KernelArg.View(new DeviceView(View(r).Pointer, bytes / 16)), KernelArg.View(new DeviceView(View(d).Pointer, units)),
                KernelArg.Int((int)(bytes / 16)), KernelArg.Int((int)units),
            ]);
        return d;
    }

    /// <summary>Rows of a transposed operand: the first axis padded to a multiple of the group.</summary>
    public static int PaddedRows(int rows) => GpuQuantizer.PaddedRows(rows);

    /// <summary>The launcher of the CUDA checks: these methods with the library's kernels.</summary>
    public static IFp8Launcher Launcher { get; } = new Library();

    sealed class Library : IFp8Launcher
    {
        public Fp8Tensors Rows(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema, PackedTensor? stored) => CudaFp8.Rows(x, spec, seed, stream, ema, stored);
        public Fp8Tensors Columns(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema) => CudaFp8.Columns(x, spec, seed, stream, ema);
        public Fp8Tensors StoredColumns(PackedTensor source, QuantSpec target, ulong seed, ulong stream) => CudaFp8.StoredColumns(source, target, seed, stream);
        public (Fp8Tensors Q3, Fp8Tensors Q5) Dual(Tensor dy, QuantSpec spec, ulong seed, ulong stream3, ulong stream5) => CudaFp8.Dual(dy, spec, seed, stream3, stream5);
        public void Patch(Tensor d, Fp8Tensors a, Fp8Tensors b, int k, Tensor? bias) => CudaFp8.Patch(d, a, b, k, bias);
    }

    static DeviceView Ema(Tensor? ema, QuantSpec spec, Tensor like)
    {
        if (spec.Rounding != Rounding.EmaGuided) return DeviceView.None;
        if (ema is null) throw new ArgumentException("EMA-guided rounding needs the EMA tensor");
        return View(DeviceTensors.Aligned(ema.reshape(like.shape).to(ScalarType.Float32, like.device)));
    }
}
