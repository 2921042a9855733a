using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// The reference backend: every quantizer through <see cref="ReferenceQuantizer"/> (and <see cref="Hadamard.Apply"/>)
/// on host copies, results returned on the input's device. Slow and obviously right; a whole layer run on it is what
/// the tests hold the CPU and CUDA backends to, bit for bit.
/// </summary>
public sealed class ReferenceBackend : QuantBackend
{
    public static ReferenceBackend Instance { get; } = new();

    ReferenceBackend() { }

    public override string Name => "reference (scalar)";

    static float[] Host(Tensor x) => x.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    static float[] Ema(Tensor? ema, QuantSpec spec) => spec.Rounding != Rounding.EmaGuided ? []
        : Host(ema ?? throw new ArgumentException("EMA-guided rounding needs the EMA tensor"));

    static Tensor Back(float[] y, Tensor like) => tensor(y, like.size(0), like.size(1)).to(like.dtype).to(like.device);

    static float[] Quantize(float[] x, int rows, int cols, BlockAxis axis, QuantSpec spec, bool hadamard, SlotStreams s, float[] ema, bool pad)
    {
        if (hadamard) Hadamard.Apply(x, rows, cols, axis, s.Signs);
        var y = new float[x.Length];
        ReferenceQuantizer.Quantize(x, y, rows, cols, axis, spec, s.Seed, s.Stream, ema, pad);
        return y;
    }

    public override Tensor Rows(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null, bool pad = false)
    {
        CheckShape(x, BlockAxis.Last, q.Spec, pad, q.Hadamard);
        return Back(Quantize(Host(x), (int)x.size(0), (int)x.size(1), BlockAxis.Last, q.Spec, q.Hadamard, s, Ema(ema, q.Spec), pad), x);
    }

    public override (Tensor Q, PackedTensor Stored) RowsStored(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null)
    {
        if (!q.Stores || q.Hadamard) throw new ArgumentException($"{q} does not store");
        CheckShape(x, BlockAxis.Last, q.Spec, false, false);
        int rows = (int)x.size(0), cols = (int)x.size(1);
        var y = new float[(long)rows * cols];
        var codes = new byte[y.Length];
        var scales = new byte[PackedTensor.ScaleCount(rows, cols, BlockAxis.Last, q.Spec)];
        var outer = new float[PackedTensor.OuterCount(rows, cols, BlockAxis.Last, q.Spec)];
        ReferenceQuantizer.QuantizePacked(Host(x), y, rows, cols, BlockAxis.Last, q.Spec, codes, scales, outer, s.Seed, s.Stream, Ema(ema, q.Spec));
        using var packed = PackedTensor.Pack(codes, scales, outer, rows, cols, BlockAxis.Last, q.Spec, dtype: x.dtype);
        return (Back(y, x), packed.To(x.device));
    }

    public override Tensor Columns(ColumnQuantizer q, Tensor x, SlotStreams s, bool pad, Tensor? ema = null)
    {
        CheckShape(x, BlockAxis.First, q.Spec, pad, q.Hadamard);
        return Back(Quantize(Host(x), (int)x.size(0), (int)x.size(1), BlockAxis.First, q.Spec, q.Hadamard, s, Ema(ema, q.Spec), pad), x);
    }

    public override Tensor ColumnsFromStored(StoredColumnQuantizer q, PackedTensor source, long rows, SlotStreams s)
    {
        using var scope = NewDisposeScope();
        using var host = source.To(CPU);
        var values = new float[source.Count];
        host.Dequantize(values);
        // As the dtype the operand was kept in holds it, then zero rows up to the padded length.
        var padded = new float[rows * source.Cols];
        tensor(values).to(source.DType).to(ScalarType.Float32).data<float>().CopyTo(padded);
        var like = empty(new long[] { rows, source.Cols }, source.DType, source.Device);
        CheckShape(like, BlockAxis.First, q.Spec, true, q.Hadamard);
        return Back(Quantize(padded, (int)rows, source.Cols, BlockAxis.First, q.Spec, q.Hadamard, s, [], true), like).MoveToOuterDisposeScope();
    }

    public override (Tensor Q3, Tensor Q5) Dual(DualQuantizer q, Tensor dy, SlotStreams s3, SlotStreams s5)
    {
        CheckShape(dy, BlockAxis.Last, q.Spec, false, false, "dY");
        int rows = (int)dy.size(0), cols = (int)dy.size(1);
        var x = Host(dy);
        return (Back(Quantize((float[])x.Clone(), rows, cols, BlockAxis.Last, q.Spec, q.Hadamard, s3, [], false), dy),
                Back(Quantize(x, rows, cols, BlockAxis.First, q.Spec, q.Hadamard, s5, [], true), dy));
    }
}
