using TetraJet.Interop;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Gpu;
using TetraJet.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization;

/// <summary>
/// The one dispatch point from TorchSharp tensors to the quantizer paths (device × dtype).
/// A tensor of any rank is viewed as 2-D [rows, cols] with all leading dimensions flattened into rows.
/// </summary>
public static class Quantizer
{
    /// <summary>
    /// Q(x): the dequantized tensor, same shape, dtype (float32 or bfloat16) and device as <paramref name="x"/>.
    /// With <paramref name="hadamard"/> the 16-point RHT (signs from seed/stream) is applied along the block
    /// axis first and the quantized transformed tensor is returned.
    /// </summary>
    public static Tensor Quantize(Tensor x, QuantSpec spec, BlockAxis axis = BlockAxis.Last, ulong seed = 0, ulong stream = 0,
        Tensor? ema = null, bool padBlockAxis = false, bool hadamard = false)
        => Run(x, spec, axis, seed, stream, ema, padBlockAxis, hadamard ? Philox.HadamardSigns(seed, stream) : null);

    /// <summary>
    /// RHT with the given 16 sign bits, then quantization with SR stream <paramref name="stream"/>: the two operands
    /// of one GEMM share their signs (so the transforms cancel) but not their rounding noise.
    /// </summary>
    public static Tensor QuantizeWithSigns(Tensor x, QuantSpec spec, BlockAxis axis, ulong seed, ulong stream, uint hadamardSigns,
        bool padBlockAxis = false, Tensor? ema = null)
        => Run(x, spec, axis, seed, stream, ema, padBlockAxis, hadamardSigns);

    static Tensor Run(Tensor x, QuantSpec spec, BlockAxis axis, ulong seed, ulong stream, Tensor? ema, bool padBlockAxis, uint? signs)
    {
        bool hadamard = signs.HasValue;
        if (x.dim() < 1) throw new ArgumentException($"cannot quantize a rank-0 tensor; expected [..., features]");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {x.dtype}");
        // CUDA: the ILGPU kernels, in place on torch's memory and stream, bf16 kept as it is.
        if (x.device_type == DeviceType.CUDA)
            return GpuQuantizer.Quantize(x, spec, axis, seed, stream, ema, padBlockAxis, hadamard, signs);
        using var scope = NewDisposeScope();
        long cols = x.shape[^1];
        long rows = cols == 0 ? 0 : x.numel() / cols;
        var x2 = x.reshape(rows, cols).to(ScalarType.Float32, copy: hadamard).contiguous();
        if (hadamard)
        {
            if ((axis == BlockAxis.Last ? cols : rows) % Hadamard.Size != 0)
                throw new ArgumentException($"the Hadamard transform needs the block axis to be a multiple of 16, got {(axis == BlockAxis.Last ? cols : rows)}");
        }
        Tensor? e2 = null;
        if (spec.Rounding == Rounding.EmaGuided)
        {
            if (ema is null) throw new ArgumentException("EMA-guided rounding needs the EMA tensor");
            e2 = ema.reshape(rows, cols).to(ScalarType.Float32).contiguous();
        }
        Tensor y;
        if (x.device_type == DeviceType.CPU)
        {
            y = empty_like(x2);
            var xs = TensorMemory.Floats(x2);
            if (hadamard) CpuHadamard.Apply(xs, xs, (int)rows, (int)cols, axis, signs!.Value);
            CpuQuantizer.Quantize(xs, TensorMemory.Floats(y), (int)rows, (int)cols, axis, spec, seed, stream,
                e2 is null ? default : TensorMemory.Floats(e2), padBlockAxis);
        }
        else
        {
            // Other devices have no kernels: round-trip through the CPU path (same bits, slower).
            var cpu = Run(x2.cpu(), spec, axis, seed, stream, e2?.cpu(), padBlockAxis, signs);
            y = cpu.to(x.device);
        }
        return y.to(x.dtype).reshape(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The backward pair of a linear layer from one read of dY [T, N]: Q(dY) with blocks along N (Q3) and along T
    /// (Q5, T zero-padded to the block), bit for bit what two <see cref="Quantize"/> calls give. No RHT.
    /// </summary>
    public static (Tensor Last, Tensor First) QuantizeBothAxes(Tensor dy, QuantSpec spec, ulong seed, ulong streamLast, ulong streamFirst)
    {
        if (dy.dim() != 2) throw new ArgumentException($"expected a 2-D [T, N] tensor, got rank {dy.dim()}");
        if (dy.device_type == DeviceType.CUDA)
        {
            // The fused CUDA kernel covers the TetraJet scale rule and NVFP4; anything else takes two passes.
            if (spec.Format == QuantFormat.NVFP4 || (spec.Format == QuantFormat.MXFP4 && spec.ScaleRule == ScaleRule.TetraJet))
                return GpuQuantizer.QuantizeDual(dy, spec, seed, streamLast, streamFirst);
            return (Quantize(dy, spec, BlockAxis.Last, seed, streamLast),
                    Quantize(dy, spec, BlockAxis.First, seed, streamFirst, padBlockAxis: true));
        }
        using var scope = NewDisposeScope();
        var x = dy.to(ScalarType.Float32).contiguous();
        var last = empty_like(x);
        var first = empty_like(x);
        CpuQuantizer.QuantizeBothAxes(TensorMemory.Floats(x), TensorMemory.Floats(last), TensorMemory.Floats(first),
            (int)x.shape[0], (int)x.shape[1], spec, spec, seed, streamLast, streamFirst, padFirst: true);
        return (last.to(dy.dtype).MoveToOuterDisposeScope(), first.to(dy.dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Quantizes a CPU tensor (float32 or bfloat16, viewed as 2-D with the leading dimensions flattened) into its
    /// packed storage form. <see cref="PackedTensor.Dequantize()"/> gives back exactly <see cref="Quantize"/>'s output.
    /// </summary>
    public static PackedTensor QuantizePacked(Tensor x, QuantSpec spec, BlockAxis axis = BlockAxis.Last, ulong seed = 0, ulong stream = 0,
        Tensor? ema = null, bool padBlockAxis = false, bool hadamard = false)
    {
        if (x.dim() < 1) throw new ArgumentException("cannot quantize a rank-0 tensor; expected [..., features]");
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16)
            throw new ArgumentException($"expected a float32 or bfloat16 tensor, got {x.dtype}");
        if (spec.Format == QuantFormat.None) throw new ArgumentException("an unquantized tensor has no packed form");
        using var scope = NewDisposeScope();
        long cols = x.shape[^1];
        long rows = cols == 0 ? 0 : x.numel() / cols;
        var x2 = x.cpu().reshape(rows, cols).to(ScalarType.Float32, copy: true).contiguous();
        var xs = TensorMemory.Floats(x2);
        if (hadamard) CpuHadamard.Apply(xs, xs, (int)rows, (int)cols, axis, Philox.HadamardSigns(seed, stream));
        ReadOnlySpan<float> es = default;
        if (spec.Rounding == Rounding.EmaGuided)
        {
            if (ema is null) throw new ArgumentException("EMA-guided rounding needs the EMA tensor");
            es = TensorMemory.Floats(ema.cpu().reshape(rows, cols).to(ScalarType.Float32).contiguous());
        }
        int r = (int)rows, c = (int)cols;
        var codes = new byte[rows * cols];
        var scales = new byte[PackedTensor.ScaleCount(r, c, axis, spec)];
        var outer = new float[PackedTensor.OuterCount(r, c, axis, spec)];
        var y = new float[rows * cols];
        Reference.ReferenceQuantizer.QuantizePacked(xs, y, r, c, axis, spec, codes, scales, outer, seed, stream, es, padBlockAxis);
        return PackedTensor.Pack(codes, scales, outer, r, c, axis, spec, x.shape, x.dtype);
    }
}
