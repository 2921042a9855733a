using System.Collections.Concurrent;
using TetraJet.Plans;
using TetraJet.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization;

/// <summary>
/// The bare quantizer API on TorchSharp tensors: one call, one quantizer, any spec, on the tensor's device through its
/// backend (<see cref="QuantBackend.For"/>). A tensor of any rank is viewed as 2-D [rows, cols] with all leading
/// dimensions flattened into rows. Layers do not come here: their plans hold quantizers fixed at build time.
/// </summary>
public static class Quantizer
{
    static readonly ConcurrentDictionary<(QuantSpec, bool), RowQuantizer> RowsOf = new();
    static readonly ConcurrentDictionary<(QuantSpec, bool), ColumnQuantizer> ColumnsOf = new();
    static readonly ConcurrentDictionary<QuantSpec, RowQuantizer> StoringRowsOf = new();

    /// <summary>
    /// Q(x): the dequantized tensor, same shape, dtype (float32 or bfloat16) and device as <paramref name="x"/>.
    /// With <paramref name="hadamard"/> the 16-point RHT (signs from seed/stream) is applied along the block
    /// axis first and the quantized transformed tensor is returned.
    /// </summary>
    public static Tensor Quantize(Tensor x, QuantSpec spec, BlockAxis axis = BlockAxis.Last, ulong seed = 0, ulong stream = 0,
        Tensor? ema = null, bool padBlockAxis = false, bool hadamard = false)
        => Run(x, spec, axis, new SlotStreams(seed, stream, hadamard ? Philox.HadamardSigns(seed, stream) : 0u), ema, padBlockAxis, hadamard);

    static (Tensor X2, long Rows, long Cols) Check(Tensor x)
    {
        if (x.dim() < 1) throw new ArgumentException("cannot quantize a rank-0 tensor; expected [..., features]");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {x.dtype}");
        long cols = x.size(-1);
        long rows = cols == 0 ? 0 : x.numel() / cols;
        return (x.reshape(rows, cols), rows, cols);
    }

    static Tensor Run(Tensor x, QuantSpec spec, BlockAxis axis, SlotStreams s, Tensor? ema, bool pad, bool hadamard)
    {
        using var scope = NewDisposeScope();
        var (x2, rows, cols) = Check(x);
        if (spec.Format == QuantFormat.None) return x2.clone().reshape(x.shape).MoveToOuterDisposeScope();
        var e2 = spec.Rounding == Rounding.EmaGuided
            ? (ema ?? throw new ArgumentException("EMA-guided rounding needs the EMA tensor")).reshape(rows, cols)
            : null;
        var d = QuantBackend.For(x.device);
        var y = axis == BlockAxis.Last
            ? d.Rows(RowsOf.GetOrAdd((spec, hadamard), k => RowQuantizer.Of(k.Item1, k.Item2)), x2, s, e2, pad)
            : d.Columns(ColumnsOf.GetOrAdd((spec, hadamard), k => ColumnQuantizer.Of(k.Item1, k.Item2)), x2, s, pad, e2);
        return y.reshape(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The backward pair of a linear layer from dY [T, N]: Q(dY) with blocks along N (Q3) and along T (Q5, T
    /// zero-padded to the block), bit for bit what two <see cref="Quantize"/> calls give; one read of dY where the
    /// format has the fused kernel. No RHT.
    /// </summary>
    public static (Tensor Last, Tensor First) QuantizeBothAxes(Tensor dy, QuantSpec spec, ulong seed, ulong streamLast, ulong streamFirst)
    {
        if (dy.dim() != 2) throw new ArgumentException($"expected a 2-D [T, N] tensor, got rank {dy.dim()}");
        int f = (int)spec.Format, r = (int)spec.Rounding;
        bool ocp = spec.Format == QuantFormat.MXFP4 && spec.ScaleRule == ScaleRule.Ocp;
        if (spec.Format == QuantFormat.None || !Dataflow.FusesDy(f, r, ocp, spec.Tile16, false, f, r, ocp, spec.Tile16, false))
            return (Quantize(dy, spec, BlockAxis.Last, seed, streamLast), Quantize(dy, spec, BlockAxis.First, seed, streamFirst, padBlockAxis: true));
        return QuantBackend.For(dy.device).Dual(DualQuantizer.Of(spec), dy, new SlotStreams(seed, streamLast, 0), new SlotStreams(seed, streamFirst, 0));
    }

    /// <summary>
    /// Q(x) along the last axis and its storage form from one pass, on x's device (the form a layer keeps X̂ and Ŵ
    /// in): MXFP4 or TetraJet-v2 NVFP4, features a multiple of the block. <see cref="PackedTensor.Dequantize()"/>
    /// gives back exactly the returned values.
    /// </summary>
    public static (Tensor Quantized, PackedTensor Stored) QuantizeStored(Tensor x, QuantSpec spec, ulong seed = 0, ulong stream = 0, Tensor? ema = null)
    {
        using var scope = NewDisposeScope();
        var (x2, rows, cols) = Check(x);
        var e2 = spec.Rounding == Rounding.EmaGuided ? ema?.reshape(rows, cols) : null;
        var (q, stored) = QuantBackend.For(x.device).RowsStored(StoringRowsOf.GetOrAdd(spec, k => RowQuantizer.Of(k, stores: true)), x2,
            new SlotStreams(seed, stream, 0), e2);
        return (q.reshape(x.shape).MoveToOuterDisposeScope(), stored.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Quantizes a tensor (float32 or bfloat16, viewed as 2-D with the leading dimensions flattened) into its storage
    /// form with the scalar reference, on the CPU, along either axis and in every format.
    /// <see cref="PackedTensor.Dequantize()"/> gives back exactly <see cref="Quantize"/>'s output.
    /// </summary>
    public static PackedTensor QuantizePacked(Tensor x, QuantSpec spec, BlockAxis axis = BlockAxis.Last, ulong seed = 0, ulong stream = 0,
        Tensor? ema = null, bool padBlockAxis = false, bool hadamard = false)
    {
        if (spec.Format == QuantFormat.None) throw new ArgumentException("an unquantized tensor has no packed form");
        using var scope = NewDisposeScope();
        var (x2, rows, cols) = Check(x);
        var xs = x2.cpu().to(ScalarType.Float32, copy: true).contiguous().data<float>().ToArray();
        int r = (int)rows, c = (int)cols;
        if (hadamard) Hadamard.Apply(xs, r, c, axis, Philox.HadamardSigns(seed, stream));
        float[] es = [];
        if (spec.Rounding == Rounding.EmaGuided)
            es = (ema ?? throw new ArgumentException("EMA-guided rounding needs the EMA tensor")).cpu().reshape(rows, cols).to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var codes = new byte[rows * cols];
        var scales = new byte[PackedTensor.ScaleCount(r, c, axis, spec)];
        var outer = new float[PackedTensor.OuterCount(r, c, axis, spec)];
        var y = new float[rows * cols];
        Reference.ReferenceQuantizer.QuantizePacked(xs, y, r, c, axis, spec, codes, scales, outer, seed, stream, es, padBlockAxis);
        return PackedTensor.Pack(codes, scales, outer, r, c, axis, spec, x.shape, x.dtype).MoveToOuterDisposeScope();
    }
}
