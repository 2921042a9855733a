using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// The CUDA backend: a quantizer's ILGPU kernel launched in place on torch's memory, in torch's context and on its
/// default stream (ordered with torch's work, no synchronisation, no host round trip), bfloat16 kept as it is.
/// Launch geometry: <see cref="KernelGeometry"/> (one place per family). The kernels read and write with 16-byte vector
/// accesses, so every tensor they touch starts 16-byte aligned: fresh allocations do; an input view that does not is copied.
/// </summary>
public sealed class CudaBackend : QuantBackend
{
    public static CudaBackend Instance { get; } = new();

    CudaBackend() { }

    public override string Name => "CUDA (ILGPU)";

    static bool Bf16(Tensor t) => t.dtype == ScalarType.BFloat16;

    static void CheckInput(Tensor x)
    {
        if (x.device_type != DeviceType.CUDA) throw new ArgumentException($"expected a CUDA tensor, got one on {x.device}");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16) throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {x.dtype}");
        if (x.size(0) > int.MaxValue || x.size(1) > int.MaxValue) throw new ArgumentException($"tensor of [{x.size(0)}, {x.size(1)}] is too large");
    }

    static Tensor Aligned(Tensor t) => DeviceTensors.Aligned(t);

    /// <summary>
    /// Zeroes the per-tensor amax and runs the amax pass of a per-tensor quantizer; returns the buffer's view. Without an
    /// amax pass (every block-scaled quantizer) no buffer: those kernels never read it, and a tensor per call is host time
    /// on every layer.
    /// </summary>
    static DeviceView Amax(CudaRunner runner, GpuKernel? kernel, Tensor x, BlockAxis axis, bool hadamard, uint signs)
    {
        if (kernel is null) return DeviceView.None;
        var scratch = empty(new long[] { 1 }, ScalarType.Int32, x.device);
        var view = DeviceTensors.View(scratch);
        int rows = (int)x.size(0), cols = (int)x.size(1);
        long n = (long)rows * cols;
        runner.Zero(view, 1);
        runner.Launch(kernel.For(Bf16(x)), KernelGeometry.Amax(axis, hadamard, rows, cols), [KernelArg.View(DeviceTensors.View(x)), KernelArg.View(view), KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.UInt(signs)]);
        return view;
    }

    static DeviceView EmaView(Tensor? ema, QuantSpec spec, Tensor like)
    {
        if (spec.Rounding != Rounding.EmaGuided) return DeviceView.None;
        if (ema is null) throw new ArgumentException("EMA-guided rounding needs the EMA tensor");
        return DeviceTensors.View(Aligned(ema.reshape(like.shape).to(ScalarType.Float32, like.device)));
    }

    Tensor LaunchRows(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema, PackedTensor? stored, bool pad)
    {
        CheckInput(x);
        CheckShape(x, BlockAxis.Last, q.Spec, pad, q.Hadamard);
        var runner = DeviceTensors.Runner(x.device);
        var x2 = Aligned(x);
        var y = empty_like(x2);
        if (x2.numel() == 0) return y;
        int rows = (int)x2.size(0), cols = (int)x2.size(1);
        var amax = Amax(runner, q.GpuAmax, x2, BlockAxis.Last, q.Hadamard, s.Signs);
        runner.Launch(q.Gpu.For(Bf16(x2)), KernelGeometry.Rows(q.Spec, rows, cols),
        [
            KernelArg.View(DeviceTensors.View(x2)), KernelArg.View(DeviceTensors.View(y)), KernelArg.View(EmaView(ema, q.Spec, x2)), KernelArg.View(amax),
            KernelArg.View(stored is null ? DeviceView.None : DeviceTensors.View(stored.Codes)),
            KernelArg.View(stored is null ? DeviceView.None : DeviceTensors.View(stored.Scales)),
            KernelArg.View(stored is null ? DeviceView.None : DeviceTensors.View(stored.OuterScales)),
            KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Key(s.Seed), KernelArg.ULong(s.Stream), KernelArg.UInt(s.Signs),
        ]);
        return y;
    }

    public override Tensor Rows(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null, bool pad = false)
    {
        if (q.Stores) throw new ArgumentException($"{q} stores: use RowsStored");
        using var scope = NewDisposeScope();
        return LaunchRows(q, x, s, ema, null, pad).MoveToOuterDisposeScope();
    }

    public override (Tensor Q, PackedTensor Stored) RowsStored(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null)
    {
        if (!q.Stores) throw new ArgumentException($"{q} does not store");
        using var scope = NewDisposeScope();
        var stored = PackedTensor.Allocate(q.Spec, (int)x.size(0), (int)x.size(1), x.dtype, x.device);
        var y = LaunchRows(q, x, s, ema, stored, false);
        return (y.MoveToOuterDisposeScope(), stored.MoveToOuterDisposeScope());
    }

    public override Tensor Columns(ColumnQuantizer q, Tensor x, SlotStreams s, bool pad, Tensor? ema = null)
    {
        CheckInput(x);
        CheckShape(x, BlockAxis.First, q.Spec, pad, q.Hadamard);
        using var scope = NewDisposeScope();
        var runner = DeviceTensors.Runner(x.device);
        var x2 = Aligned(x);
        var y = empty_like(x2);
        if (x2.numel() == 0) return y.MoveToOuterDisposeScope();
        int rows = (int)x2.size(0), cols = (int)x2.size(1);
        var amax = Amax(runner, q.GpuAmax, x2, BlockAxis.First, q.Hadamard, s.Signs);
        runner.Launch(q.Gpu.For(Bf16(x2)), KernelGeometry.Columns(q.Spec, rows, cols),
        [
            KernelArg.View(DeviceTensors.View(x2)), KernelArg.View(DeviceTensors.View(y)), KernelArg.View(EmaView(ema, q.Spec, x2)), KernelArg.View(amax),
            KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Key(s.Seed), KernelArg.ULong(s.Stream), KernelArg.UInt(s.Signs),
        ]);
        return y.MoveToOuterDisposeScope();
    }

    public override Tensor ColumnsFromStored(StoredColumnQuantizer q, PackedTensor source, long rows, SlotStreams s)
    {
        if (source.Device.type != DeviceType.CUDA) throw new ArgumentException($"expected CUDA storage, got it on {source.Device}");
        if (rows < source.Rows || rows > int.MaxValue) throw new ArgumentException($"{rows} rows for a source of {source.Rows}");
        using var scope = NewDisposeScope();
        var y = empty(new long[] { rows, source.Cols }, source.DType, source.Device);
        if (y.numel() == 0) return y.MoveToOuterDisposeScope();
        int cols = source.Cols;
        DeviceTensors.Runner(source.Device).Launch(q.Gpu.For(source.DType == ScalarType.BFloat16), KernelGeometry.Columns(q.Spec, (int)rows, cols),
        [
            KernelArg.View(DeviceTensors.View(source.Codes)), KernelArg.View(DeviceTensors.View(source.Scales)), KernelArg.View(DeviceTensors.View(source.OuterScales)),
            KernelArg.View(DeviceTensors.View(y)), KernelArg.Int((int)rows), KernelArg.Int(cols), KernelArg.Int(source.Rows),
            KernelArg.Key(s.Seed), KernelArg.ULong(s.Stream), KernelArg.UInt(s.Signs),
        ]);
        return y.MoveToOuterDisposeScope();
    }

    public override (Tensor Q3, Tensor Q5) Dual(DualQuantizer q, Tensor dy, SlotStreams s3, SlotStreams s5)
    {
        CheckInput(dy);
        CheckShape(dy, BlockAxis.Last, q.Spec, false, false, "dY");
        if (q.Hadamard && dy.size(0) % Hadamard.Size != 0) throw new ArgumentException($"dY: the RHT along T needs T a multiple of 16, got {dy.size(0)}");
        using var scope = NewDisposeScope();
        var runner = DeviceTensors.Runner(dy.device);
        var x2 = Aligned(dy);
        var y3 = empty_like(x2);
        var y5 = empty_like(x2);
        if (x2.numel() == 0) return (y3.MoveToOuterDisposeScope(), y5.MoveToOuterDisposeScope());
        int rows = (int)x2.size(0), cols = (int)x2.size(1);
        runner.Launch(q.Gpu.For(Bf16(x2)), KernelGeometry.Dual(q.Spec, rows, cols),
        [
            KernelArg.View(DeviceTensors.View(x2)), KernelArg.View(DeviceTensors.View(y3)), KernelArg.View(DeviceTensors.View(y5)),
            KernelArg.Int(rows), KernelArg.Int(cols), KernelArg.Key(s3.Seed), KernelArg.ULong(s3.Stream), KernelArg.ULong(s5.Stream),
            KernelArg.UInt(s3.Signs), KernelArg.UInt(s5.Signs),
        ]);
        return (y3.MoveToOuterDisposeScope(), y5.MoveToOuterDisposeScope());
    }
}
