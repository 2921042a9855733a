using TetraJet.Formats;
using TetraJet.Interop;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization;

/// <summary>
/// Storage form (ALGORITHMS.md §1: two E2M1 codes per byte, or one E4M3 code per byte for MXFP8; one scale byte per
/// block, FP32 outer scales) of a quantizer's output along the last axis, on the tensor's own device: <see cref="Pack"/>
/// and <see cref="Unpack"/> run the vectorised CPU loop (<see cref="Cpu.CpuPacking"/>) or the GPU kernels
/// (<see cref="PackKernels"/>, <see cref="Mx8PackKernels"/>), one pass each way; <see cref="PackWithTensorOps"/> and <see cref="UnpackWithTensorOps"/> are their reference, built
/// from plain tensor operations (any device), and all three write the same bytes. Unpacking returns exactly the
/// quantizer's dequantized bits.
/// </summary>
/// <remarks>
/// The reference is exact at every step: the block and outer maxima, the IEEE divisions and products the quantizer
/// itself does, and table look-ups (bucketize against exact thresholds and midpoints, index into exact value tables)
/// where the quantizer works on bits. Scales are recomputed from the original input as the quantizer computed them
/// (a rounded or overflowed dequantized value does not give them back); codes are the nearest grid points of the
/// dequantized values over their scale, which is what any rounding mode (RTN, SR, EMA-guided) left there.
/// </remarks>
public static class DevicePacking
{
    /// <summary>
    /// Formats this class packs: MXFP4 (either scale rule, any rounding), TetraJet-v2 NVFP4 (per-128 outer scale) and
    /// MXFP8 (OutControl's outlier channels).
    /// </summary>
    public static bool CanPack(QuantSpec spec, long cols) => !spec.Tile16 && spec.Format switch
    {
        QuantFormat.MXFP4 or QuantFormat.MXFP8 => cols % 32 == 0,
        QuantFormat.NVFP4 => cols % 128 == 0,
        _ => false,
    };

    /// <summary>
    /// Packs <paramref name="dequantized"/> = Q(<paramref name="original"/>) of a [rows, cols] tensor quantized along its
    /// last axis with <paramref name="spec"/>: the scales come from the original, the codes from the dequantized values.
    /// </summary>
    public static PackedOperand Pack(Tensor original, Tensor dequantized, QuantSpec spec)
    {
        if (dequantized.dim() != 2) throw new ArgumentException($"packing needs a 2-D tensor, got rank {dequantized.dim()}");
        long rows = dequantized.shape[0], cols = dequantized.shape[1];
        if (!CanPack(spec, cols)) throw new ArgumentException($"{spec} along a last axis of {cols} has no device packing");
        if (!original.shape.SequenceEqual(dequantized.shape)) throw new ArgumentException($"original [{string.Join(", ", original.shape)}] and quantized [{rows}, {cols}] differ in shape");
        using var scope = NewDisposeScope();
        var packed = dequantized.device.type switch
        {
            DeviceType.CUDA when original.dtype == dequantized.dtype => PackOnGpu(original, dequantized, spec, rows, cols),
            DeviceType.CPU => PackOnCpu(original, dequantized, spec, rows, cols),
            _ => PackWithTensorOps(original, dequantized, spec),
        };
        return packed.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The reference: <see cref="Pack"/> with tensor operations only, on any device. The CPU loop and the GPU kernels
    /// write the same bytes.
    /// </summary>
    public static PackedOperand PackWithTensorOps(Tensor original, Tensor dequantized, QuantSpec spec)
    {
        if (dequantized.dim() != 2) throw new ArgumentException($"packing needs a 2-D tensor, got rank {dequantized.dim()}");
        long rows = dequantized.shape[0], cols = dequantized.shape[1];
        if (!CanPack(spec, cols)) throw new ArgumentException($"{spec} along a last axis of {cols} has no device packing");
        using var scope = NewDisposeScope();
        var device = dequantized.device;
        var q = dequantized.to(ScalarType.Float32);
        if (spec.Format == QuantFormat.MXFP8) return PackMx8WithTensorOps(original, dequantized, rows, cols).MoveToOuterDisposeScope();
        Tensor scales, outer;
        Tensor grid;   // the dequantized values divided by their block scale: on (or, for NVFP4, next to) the E2M1 grid
        if (spec.Format == QuantFormat.MXFP4)
        {
            // The block's own scale, from the original block as the quantizer chose it.
            var amax = original.to(ScalarType.Float32).view(rows, cols / 32, 32).abs().amax([-1]);
            var tables = Tables.For(device);
            var exp = spec.ScaleRule == ScaleRule.Ocp
                // bucketize counts the powers of two ≤ amax: floor(log2 amax) = count − 150; the exponent is that − 2
                ? amax.bucketize(tables.Pow2, outInt32: true, right: true).sub(Tables.Pow2Offset + 3).clamp(E8M0.MinExponent, E8M0.MaxExponent)
                // the first 6·2^s ≥ amax
                : amax.bucketize(tables.SixPow2Bounds, outInt32: true).add(E8M0.MinExponent);
            scales = exp.add(127).where(amax.isfinite(), E8M0.NaN).to(ScalarType.Byte);   // a block with NaN or Inf is all NaN
            var inverse = tables.Pow2.index_select(0, exp.neg().add(Tables.Pow2Offset).flatten().to(ScalarType.Int64)).view(rows, cols / 32, 1);
            grid = q.view(rows, cols / 32, 32).mul(inverse).view(rows, cols);   // exact: a power-of-two scaling
            outer = empty(0, ScalarType.Float32, device);
        }
        else
        {
            var x = original.to(ScalarType.Float32);
            var amaxOuter = x.view(rows, cols / 128, 128).abs().amax([-1]);
            var so = amaxOuter.div(full_like(amaxOuter, ScalarCore.NvOuterDivisor));   // tensor divisor: an IEEE division on every device
            so = so.where(amaxOuter.isfinite(), float.NaN);                               // a non-finite outer block is all NaN
            var d = so.mul(6f).repeat_interleave(8, 1);
            var amaxInner = x.view(rows, cols / 16, 16).abs().amax([-1]);
            var ratio = amaxInner.div(d.where(d.ne(0), 1f));
            scales = E4M3Codes(ratio, device).where(d.ne(0), (byte)0);
            var scale = Tables.For(device).E4M3.index_select(0, scales.flatten().to(ScalarType.Int64)).view(rows, cols / 16)
                .mul(so.repeat_interleave(8, 1));                                          // FP32(s_i·s_o), as the quantizer rounds it
            grid = q.view(rows, cols / 16, 16).div(scale.where(scale.ne(0), 1f).unsqueeze(-1)).view(rows, cols);
            outer = so;
        }
        var magnitude = grid.abs().bucketize(Tables.For(device).E2M1Midpoints, outInt32: true);
        var codes = magnitude.add(q.signbit().to(ScalarType.Int32).mul(8));
        // A non-finite block is NaN whatever its codes: store zeros, so that every device writes the same bytes.
        var nanBlock = spec.Format == QuantFormat.MXFP4 ? scales.eq(E8M0.NaN).repeat_interleave(32, 1) : outer.isnan().repeat_interleave(128, 1);
        codes = codes.where(nanBlock.logical_not(), 0).to(ScalarType.Byte).view(rows, cols / 2, 2);
        var packed = codes.select(2, 1).mul(16).add(codes.select(2, 0));
        return new PackedOperand(spec, dequantized.dtype, rows, cols, packed.contiguous(), scales.contiguous(), outer.contiguous()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// MXFP8 in the reference's steps: the round-up E8M0 exponent (§3.4) as the first 448·2^s ≥ amax, codes as the
    /// nearest E4M3 grid points of the dequantized values over their exact power-of-two scale (a saturated ±Inf
    /// takes 448's code, which decodes to the same ±Inf), the sign in bit 7.
    /// </summary>
    static PackedOperand PackMx8WithTensorOps(Tensor original, Tensor dequantized, long rows, long cols)
    {
        var device = dequantized.device;
        var tables = Tables.For(device);
        var q = dequantized.to(ScalarType.Float32);
        var amax = original.to(ScalarType.Float32).view(rows, cols / 32, 32).abs().amax([-1]);
        var exp = amax.bucketize(tables.Fp8Pow2Bounds, outInt32: true).add(E8M0.MinExponent);
        var scales = exp.add(127).where(amax.isfinite(), E8M0.NaN).to(ScalarType.Byte);   // a block with NaN or Inf is all NaN
        var inverse = tables.Pow2.index_select(0, exp.neg().add(Tables.Pow2Offset).flatten().to(ScalarType.Int64)).view(rows, cols / 32, 1);
        var grid = q.view(rows, cols / 32, 32).mul(inverse).view(rows, cols);   // exact: a power-of-two scaling
        var codes = E4M3Codes(grid.abs(), device).to(ScalarType.Int32).add(q.signbit().to(ScalarType.Int32).mul(128));
        codes = codes.where(scales.ne(E8M0.NaN).repeat_interleave(32, 1), 0).to(ScalarType.Byte);
        return new PackedOperand(new QuantSpec(QuantFormat.MXFP8), dequantized.dtype, rows, cols, codes.contiguous(), scales.contiguous(), empty(0, ScalarType.Float32, device));
    }

    /// <summary>Bytes of element codes per row: two E2M1 codes per byte, or one E4M3 code.</summary>
    static long CodeBytesPerRow(QuantSpec spec, long cols) => spec.Format == QuantFormat.MXFP8 ? cols : cols / 2;

    /// <summary>The codes as the kernels' words: 16 bits (four E2M1 codes) or 32 bits (four E4M3 codes).</summary>
    static DeviceView CodeWords(Tensor codes, QuantSpec spec) =>
        new(TensorMemory.DataPointer(codes), codes.numel() / (spec.Format == QuantFormat.MXFP8 ? 4 : 2));

    static PackedOperand PackOnGpu(Tensor original, Tensor dequantized, QuantSpec spec, long rows, long cols)
    {
        var x = original.contiguous();
        var q = dequantized.contiguous();
        var device = q.device;
        var codes = empty(new[] { rows, CodeBytesPerRow(spec, cols) }, ScalarType.Byte, device);
        var scales = empty(new[] { rows, cols / spec.Block }, ScalarType.Byte, device);
        var outer = spec.Format == QuantFormat.NVFP4 ? empty(new[] { rows, cols / 128 }, ScalarType.Float32, device) : empty(0, ScalarType.Float32, device);
        GpuPacking.LaunchPack(Runner(device), GpuQuantizer.View(x), GpuQuantizer.View(q), CodeWords(codes, spec),
            GpuQuantizer.View(scales), outer.numel() == 0 ? new DeviceView(TensorMemory.DataPointer(codes), 0) : GpuQuantizer.View(outer),
            (int)rows, (int)cols, spec, q.dtype == ScalarType.BFloat16);
        return new PackedOperand(spec, q.dtype, rows, cols, codes, scales, outer);
    }

    static unsafe PackedOperand PackOnCpu(Tensor original, Tensor dequantized, QuantSpec spec, long rows, long cols)
    {
        var x = original.to(ScalarType.Float32).cpu().contiguous();
        var q = dequantized.to(ScalarType.Float32).cpu().contiguous();
        var codes = empty(new[] { rows, CodeBytesPerRow(spec, cols) }, ScalarType.Byte);
        var scales = empty(new[] { rows, cols / spec.Block }, ScalarType.Byte);
        var outer = empty(spec.Format == QuantFormat.NVFP4 ? rows * cols / 128 : 0, ScalarType.Float32);
        if (spec.Format == QuantFormat.NVFP4) outer = outer.view(rows, cols / 128);
        fixed (float* px = TensorMemory.Floats(x), pq = TensorMemory.Floats(q), po = TensorMemory.Floats(outer))
        fixed (byte* pc = TensorMemory.Bytes(codes), ps = TensorMemory.Bytes(scales))
            Cpu.CpuPacking.Pack(px, pq, pc, ps, po, (int)rows, (int)cols, spec);
        return new PackedOperand(spec, dequantized.dtype, rows, cols, codes, scales, outer);
    }

    static CudaRunner Runner(Device device) => CudaRunner.ForDevice(device.index < 0 ? 0 : device.index);

    /// <summary>The dequantized [rows, cols] tensor in the original dtype, bit for bit the quantizer's output.</summary>
    public static Tensor Unpack(PackedOperand p)
    {
        using var scope = NewDisposeScope();
        var device = p.Codes.device;
        if (device.type == DeviceType.CUDA)
        {
            var result = empty(new[] { p.Rows, p.Cols }, p.DType, device);
            GpuPacking.LaunchUnpack(Runner(device), CodeWords(p.Codes, p.Spec), GpuQuantizer.View(p.Scales),
                p.Outer.numel() == 0 ? new DeviceView(TensorMemory.DataPointer(p.Codes), 0) : GpuQuantizer.View(p.Outer), GpuQuantizer.View(result),
                p.Rows * p.Cols, p.Spec, p.DType == ScalarType.BFloat16);
            return result.MoveToOuterDisposeScope();
        }
        if (device.type == DeviceType.CPU)
        {
            var result = empty(new[] { p.Rows, p.Cols }, ScalarType.Float32);
            unsafe
            {
                fixed (byte* pc = TensorMemory.Bytes(p.Codes), ps = TensorMemory.Bytes(p.Scales))
                fixed (float* po = TensorMemory.Floats(p.Outer), py = TensorMemory.Floats(result))
                    Cpu.CpuPacking.Unpack(pc, ps, po, py, (int)p.Rows, (int)p.Cols, p.Spec);
            }
            return result.to(p.DType).MoveToOuterDisposeScope();
        }
        return UnpackWithTensorOps(p).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Q(RHT?(unpack(p))) along the first axis with <paramref name="target"/>, <paramref name="rows"/> rows (≥ p.Rows; the
    /// extra rows are zero padding), in one pass over the storage: on CUDA for the formats the packed-source kernels
    /// take; null otherwise (unpack and quantize instead: the same bits).
    /// </summary>
    public static Tensor? QuantizeFromPacked(PackedOperand p, QuantSpec target, long rows, ulong seed, ulong stream, uint? hadamardSigns)
    {
        if (p.Codes.device_type != DeviceType.CUDA || !GpuPacking.CanQuantizeFromPacked(p.Spec, target) || rows < p.Rows) return null;
        if (hadamardSigns is not null && rows % Hadamard.Size != 0) return null;
        using var scope = NewDisposeScope();
        var device = p.Codes.device;
        var y = empty(new[] { rows, p.Cols }, p.DType, device);
        var none = new DeviceView(TensorMemory.DataPointer(p.Codes), 0);
        GpuPacking.LaunchQuantizeFromPacked(Runner(device), GpuQuantizer.View(p.Codes), GpuQuantizer.View(p.Scales),
            p.Outer.numel() == 0 ? none : GpuQuantizer.View(p.Outer), GpuQuantizer.View(y), none,
            (int)rows, (int)p.Cols, (int)p.Rows, p.Spec, target, p.DType == ScalarType.BFloat16, seed, stream, hadamardSigns);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>The reference of <see cref="Unpack"/>: tensor operations only, on any device.</summary>
    public static Tensor UnpackWithTensorOps(PackedOperand p)
    {
        using var scope = NewDisposeScope();
        var device = p.Codes.device;
        var tables = Tables.For(device);
        if (p.Spec.Format == QuantFormat.MXFP8)
        {
            var fp8 = tables.E4M3.index_select(0, p.Codes.flatten().to(ScalarType.Int64)).view(p.Rows, p.Cols / 32, 32);
            var pow2 = tables.E8M0.index_select(0, p.Scales.flatten().to(ScalarType.Int64)).view(p.Rows, p.Cols / 32, 1);
            return fp8.mul(pow2).view(p.Rows, p.Cols).to(p.DType).MoveToOuterDisposeScope();
        }
        var low = p.Codes.bitwise_and(tensor((byte)15, device: device));
        var high = p.Codes.bitwise_right_shift(tensor((byte)4, device: device));
        var codes = stack([low, high], 2).view(p.Rows * p.Cols).to(ScalarType.Int64);
        var values = tables.E2M1.index_select(0, codes);
        Tensor scale;
        if (p.Spec.Format == QuantFormat.MXFP4)
            scale = tables.E8M0.index_select(0, p.Scales.flatten().to(ScalarType.Int64)).view(p.Rows, p.Cols / 32, 1);
        else
            scale = tables.E4M3.index_select(0, p.Scales.flatten().to(ScalarType.Int64)).view(p.Rows, p.Cols / 16)
                .mul(p.Outer.repeat_interleave(8, 1)).unsqueeze(-1);
        int block = p.Spec.Format == QuantFormat.MXFP4 ? 32 : 16;
        var y = values.view(p.Rows, p.Cols / block, block).mul(scale).view(p.Rows, p.Cols);
        return y.to(p.DType).MoveToOuterDisposeScope();
    }

    /// <summary>E4M3 byte codes of non-negative values by RNE with satfinite (§2): ties go to the even code.</summary>
    static Tensor E4M3Codes(Tensor ratio, Device device)
    {
        var bounds = Tables.For(device).E4M3Midpoints;
        var down = ratio.bucketize(bounds, outInt32: true);
        var up = ratio.bucketize(bounds, outInt32: true, right: true);
        // Where the two differ the value is exactly a midpoint: take the even code of the pair.
        var tie = down.ne(up);
        var even = down.where(down.remainder(2).eq(0), up);
        return down.where(tie.logical_not(), even).where(ratio.isnan().logical_not(), 0x7F).to(ScalarType.Byte);
    }

    /// <summary>Exact value and boundary tables, one set per device.</summary>
    sealed class Tables
    {
        /// <summary>Pow2[k] = 2^(k − Pow2Offset), 2^-149 … 2^127: every power of two a float holds, subnormals included.</summary>
        public const int Pow2Offset = 149;
        public required Tensor Pow2 { get; init; }
        /// <summary>6·2^s for s = −127 … 127: the TetraJet rule's thresholds.</summary>
        public required Tensor SixPow2Bounds { get; init; }
        /// <summary>448·2^s for s = −127 … 127: MXFP8's round-up thresholds.</summary>
        public required Tensor Fp8Pow2Bounds { get; init; }
        public required Tensor E2M1 { get; init; }
        public required Tensor E2M1Midpoints { get; init; }
        public required Tensor E4M3 { get; init; }
        public required Tensor E4M3Midpoints { get; init; }
        public required Tensor E8M0 { get; init; }

        static readonly Dictionary<string, Tables> PerDevice = [];

        public static Tables For(Device device)
        {
            string key = $"{device.type}:{device.index}";
            lock (PerDevice)
            {
                if (PerDevice.TryGetValue(key, out var t)) return t;
                return PerDevice[key] = Build(device);
            }
        }

        static Tables Build(Device device)
        {
            Tensor Make(float[] values) => tensor(values, device: device).DetachFromDisposeScope();
            var pow2 = new float[Pow2Offset + 128];
            for (int k = 0; k < pow2.Length; k++) pow2[k] = (float)Math.ScaleB(1.0, k - Pow2Offset);
            var six = new float[255];
            for (int k = 0; k < six.Length; k++) six[k] = (float)(6 * Math.ScaleB(1.0, k + Formats.E8M0.MinExponent));   // the last is +Inf
            var fp8 = new float[255];
            for (int k = 0; k < fp8.Length; k++) fp8[k] = (float)(448 * Math.ScaleB(1.0, k + Formats.E8M0.MinExponent));   // the last few are +Inf
            var e2m1 = new float[16];
            for (int c = 0; c < 16; c++) e2m1[c] = Formats.E2M1.Decode(c);
            var e2m1Mid = new float[7];
            for (int c = 0; c < 7; c++) e2m1Mid[c] = (e2m1[c] + e2m1[c + 1]) / 2;
            var e4m3 = new float[256];
            for (int c = 0; c < 256; c++) e4m3[c] = Formats.E4M3.Decode((byte)c);
            var e4m3Mid = new float[126];                                  // between the positive finite codes 0x00 … 0x7E
            for (int c = 0; c < 126; c++) e4m3Mid[c] = (e4m3[c] + e4m3[c + 1]) / 2;
            var e8m0 = new float[256];
            for (int c = 0; c < 256; c++) e8m0[c] = Formats.E8M0.Decode((byte)c);
            return new Tables
            {
                Pow2 = Make(pow2), SixPow2Bounds = Make(six), Fp8Pow2Bounds = Make(fp8), E2M1 = Make(e2m1), E2M1Midpoints = Make(e2m1Mid),
                E4M3 = Make(e4m3), E4M3Midpoints = Make(e4m3Mid), E8M0 = Make(e8m0),
            };
        }
    }
}

/// <summary>
/// An operand in storage form on its device: codes [rows, cols/2] (FP4) or [rows, cols] (MXFP8), one scale byte per
/// block, FP32 outer scales (NVFP4).
/// </summary>
public sealed class PackedOperand(QuantSpec spec, ScalarType dtype, long rows, long cols, Tensor codes, Tensor scales, Tensor outer) : IDisposable
{
    public QuantSpec Spec { get; } = spec;
    public ScalarType DType { get; } = dtype;
    public long Rows { get; } = rows;
    public long Cols { get; } = cols;
    public Tensor Codes { get; } = codes;
    public Tensor Scales { get; } = scales;
    public Tensor Outer { get; } = outer;

    /// <summary>Bytes held: codes, scales and outer scales.</summary>
    public long Bytes => Codes.numel() + Scales.numel() + 4 * Outer.numel();

    public Tensor Unpack() => DevicePacking.Unpack(this);

    /// <summary>Moves the tensors to the enclosing dispose scope.</summary>
    public PackedOperand MoveToOuterDisposeScope()
    {
        Codes.MoveToOuterDisposeScope();
        Scales.MoveToOuterDisposeScope();
        Outer.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Takes the tensors out of any dispose scope: the owner disposes them.</summary>
    public PackedOperand DetachFromDisposeScope()
    {
        Codes.DetachFromDisposeScope();
        Scales.DetachFromDisposeScope();
        Outer.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Codes.Dispose();
        Scales.Dispose();
        Outer.Dispose();
    }
}
