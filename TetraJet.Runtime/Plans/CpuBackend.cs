using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// The CPU backend: the quantizers' SIMD kernels on float32 copies of the operands (bfloat16 is widened exactly and the
/// result rounded back, as torch rounds it), parallel over rows or tiles; the RHT runs as its own pass.
/// </summary>
public sealed unsafe class CpuBackend : QuantBackend
{
    public static CpuBackend Instance { get; } = new();

    CpuBackend() { }

    public override string Name => "CPU (SIMD)";

    /// <summary>x as a float32 CPU tensor of its own (a copy when the RHT is applied in place), transformed.</summary>
    static Tensor Input(Tensor x, bool hadamard, BlockAxis axis, uint signs)
    {
        var x32 = x.to(ScalarType.Float32, copy: hadamard).contiguous();
        if (hadamard)
        {
            var span = TensorMemory.Floats(x32);
            CpuHadamard.Apply(span, span, (int)x.size(0), (int)x.size(1), axis, signs);
        }
        return x32;
    }

    static ReadOnlySpan<float> Ema(Tensor? ema, CpuKernel k, long rows, long cols) =>
        k.Spec.Rounding == Rounding.EmaGuided
            ? TensorMemory.Floats((ema ?? throw new ArgumentException("EMA-guided rounding needs the EMA tensor")).reshape(rows, cols).to(ScalarType.Float32).contiguous())
            : default;

    static Tensor Quantize(CpuKernel k, Tensor x32, SlotStreams s, Tensor? ema, bool pad)
    {
        var y = empty_like(x32);
        k.Run(TensorMemory.Floats(x32), TensorMemory.Floats(y), (int)x32.size(0), (int)x32.size(1), s.Seed, s.Stream,
            Ema(ema, k, x32.size(0), x32.size(1)), pad);
        return y;
    }

    public override Tensor Rows(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null, bool pad = false)
    {
        CheckShape(x, BlockAxis.Last, q.Spec, pad, q.Hadamard);
        using var scope = NewDisposeScope();
        var y = Quantize(q.Cpu, Input(x, q.Hadamard, BlockAxis.Last, s.Signs), s, ema, pad);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    public override (Tensor Q, PackedTensor Stored) RowsStored(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null)
    {
        if (!q.Stores || q.Hadamard) throw new ArgumentException($"{q} does not store");
        using var scope = NewDisposeScope();
        int rows = (int)x.size(0), cols = (int)x.size(1);
        var x32 = Input(x, false, BlockAxis.Last, 0);
        var y = Quantize(q.Cpu, x32, s, ema, false);
        // The storage from the float32 values: the scales from x as the quantizer chose them, the codes from y.
        var stored = PackedTensor.Allocate(q.Spec, rows, cols, x.dtype, CPU);
        var e = Ema(ema, q.Cpu, rows, cols);
        fixed (float* px = TensorMemory.Floats(x32), pq = TensorMemory.Floats(y), po = TensorMemory.Floats(stored.OuterScales), pe = e)
        fixed (byte* pc = TensorMemory.Bytes(stored.Codes), ps = TensorMemory.Bytes(stored.Scales))
            CpuPacking.Pack(px, pq, pc, ps, po, rows, cols, q.Spec, s.Seed, s.Stream, pe);
        return (y.to(x.dtype).MoveToOuterDisposeScope(), stored.MoveToOuterDisposeScope());
    }

    public override Tensor Columns(ColumnQuantizer q, Tensor x, SlotStreams s, bool pad, Tensor? ema = null)
    {
        CheckShape(x, BlockAxis.First, q.Spec, pad, q.Hadamard);
        using var scope = NewDisposeScope();
        var y = Quantize(q.Cpu, Input(x, q.Hadamard, BlockAxis.First, s.Signs), s, ema, pad);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    public override Tensor ColumnsFromStored(StoredColumnQuantizer q, PackedTensor source, long rows, SlotStreams s)
    {
        using var scope = NewDisposeScope();
        var values = PadRows(source.Dequantize().reshape(source.Rows, source.Cols), rows);
        CheckShape(values, BlockAxis.First, q.Spec, true, q.Hadamard);
        var y = Quantize(q.Cpu, Input(values, q.Hadamard, BlockAxis.First, s.Signs), s, null, pad: true);
        return y.to(source.DType).MoveToOuterDisposeScope();
    }

    public override (Tensor Q3, Tensor Q5) Dual(DualQuantizer q, Tensor dy, SlotStreams s3, SlotStreams s5)
    {
        CheckShape(dy, BlockAxis.Last, q.Spec, false, false, "dY");
        if (q.Hadamard && dy.size(0) % Hadamard.Size != 0) throw new ArgumentException($"dY: the RHT along T needs T a multiple of 16, got {dy.size(0)}");
        using var scope = NewDisposeScope();
        int rows = (int)dy.size(0), cols = (int)dy.size(1);
        Tensor y3, y5;
        if (q.Hadamard)
        {
            // Each axis has its own RHT signs, so each quantizer reads its own transformed copy.
            y3 = Quantize(q.Last, Input(dy, true, BlockAxis.Last, s3.Signs), s3, null, false);
            y5 = Quantize(q.First, Input(dy, true, BlockAxis.First, s5.Signs), s5, null, true);
        }
        else
        {
            var x32 = Input(dy, false, BlockAxis.Last, 0);
            y3 = empty_like(x32);
            y5 = empty_like(x32);
            CpuQuantizer.QuantizeBothAxes(TensorMemory.Floats(x32), TensorMemory.Floats(y3), TensorMemory.Floats(y5), rows, cols,
                q.Spec, q.Spec, s3.Seed, s3.Stream, s5.Stream, padFirst: true);
        }
        return (y3.to(dy.dtype).MoveToOuterDisposeScope(), y5.to(dy.dtype).MoveToOuterDisposeScope());
    }
}
