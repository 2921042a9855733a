using TetraJet.Formats;
using TetraJet.Interop;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization;

/// <summary>
/// A quantized tensor in storage form (ALGORITHMS.md §1), on any device: FP4 codes two per byte (element 2i in the
/// low nibble, 2i+1 in the high nibble, sign in bit 3) or MXFP8 codes one byte each, inner scales one byte each (E8M0
/// or E4M3), FP32 outer scales. Elements are in line order (line = row for block axis last, column for first; 16×16
/// tiles row-major), so every tensor here is [lines, per line]. <see cref="Dequantize()"/> gives back exactly the
/// quantizer's dequantized values. The one storage form of the project: what a layer keeps for backward, what the
/// quantize command and the export write; <see cref="Reference.ReferenceQuantizer.QuantizePacked"/> is its reference.
/// </summary>
public sealed class PackedTensor : IDisposable
{
    PackedTensor(QuantSpec spec, BlockAxis axis, long[] shape, int rows, int cols, ScalarType dtype, Tensor codes, Tensor scales, Tensor outer)
    {
        (Spec, Axis, Shape, Rows, Cols, DType, Codes, Scales, OuterScales) = (spec, axis, shape, rows, cols, dtype, codes, scales, outer);
    }

    public QuantSpec Spec { get; }
    public BlockAxis Axis { get; }
    /// <summary>The original tensor's shape; the data is its [Rows, Cols] view.</summary>
    public long[] Shape { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>The dtype that <see cref="Dequantize()"/> returns (the quantized tensor's own).</summary>
    public ScalarType DType { get; }
    /// <summary>uint8 [lines, code bytes per line] (flat when a line holds an odd number of FP4 codes).</summary>
    public Tensor Codes { get; }
    /// <summary>uint8 [lines, blocks per line] (16×16 tiles: [rows/16, cols/16]).</summary>
    public Tensor Scales { get; }
    /// <summary>float32 [lines, 128-blocks per line] (NVFP4), [1] (per-tensor NVFP4) or [0].</summary>
    public Tensor OuterScales { get; }

    public Device Device => Codes.device;
    public long Count => (long)Rows * Cols;

    /// <summary>Bytes held: codes, scales and outer scales.</summary>
    public long Bytes => Codes.numel() + Scales.numel() + 4 * OuterScales.numel();

    bool Fp8 => Fp8Of(Spec);
    static bool Fp8Of(QuantSpec spec) => spec.Format == QuantFormat.MXFP8;
    int Lines => Spec.Tile16 || Axis == BlockAxis.Last ? Rows : Cols;
    int Length => Spec.Tile16 || Axis == BlockAxis.Last ? Cols : Rows;

    /// <summary>Bytes of codes needed for <paramref name="count"/> elements.</summary>
    public static long CodeBytes(QuantSpec spec, long count) => spec.Format == QuantFormat.MXFP8 ? count : (count + 1) / 2;

    /// <summary>Inner scales of a [rows, cols] tensor (one per block in line order, or per 16×16 tile).</summary>
    public static int ScaleCount(int rows, int cols, BlockAxis axis, QuantSpec spec)
    {
        if (spec.Tile16) return rows / 16 * (cols / 16);
        int lines = axis == BlockAxis.Last ? rows : cols, len = axis == BlockAxis.Last ? cols : rows;
        return lines * ((len + spec.Block - 1) / spec.Block);
    }

    /// <summary>Outer FP32 scales: one per 128-block in line order (NVFP4), one (per-tensor NVFP4), else none.</summary>
    public static int OuterCount(int rows, int cols, BlockAxis axis, QuantSpec spec) => spec.Format switch
    {
        QuantFormat.NVFP4 => (axis == BlockAxis.Last ? rows : cols) * (((axis == BlockAxis.Last ? cols : rows) + 127) / 128),
        QuantFormat.NVFP4Tensor => 1,
        _ => 0,
    };

    /// <summary>
    /// Empty storage for a [rows, cols] operand quantized along its last axis with <paramref name="spec"/> (the form the
    /// storing row kernels write), on <paramref name="device"/>.
    /// </summary>
    public static PackedTensor Allocate(QuantSpec spec, int rows, int cols, ScalarType dtype, Device device, long[]? shape = null)
    {
        if (!Plans.Dataflow.HasStorage((int)spec.Format, spec.Tile16) || cols % spec.FeatureMultiple != 0)
            throw new ArgumentException($"{spec} along a last axis of {cols} has no storage form here");
        int outerPerRow = OuterCount(1, cols, BlockAxis.Last, spec);
        return new PackedTensor(spec, BlockAxis.Last, shape ?? [rows, cols], rows, cols, dtype,
            empty(new long[] { rows, CodeBytes(spec, cols) }, ScalarType.Byte, device),
            empty(new long[] { rows, cols / spec.Block }, ScalarType.Byte, device),
            empty(new long[] { outerPerRow == 0 ? 0 : rows, outerPerRow }, ScalarType.Float32, device));
    }

    /// <summary>
    /// Packs the outputs of <see cref="Reference.ReferenceQuantizer.QuantizePacked"/>: <paramref name="codes"/> one per element
    /// (4-bit E2M1 codes or E4M3 bytes) in line order, inner scales and outer scales as it writes them. CPU tensors.
    /// </summary>
    public static PackedTensor Pack(ReadOnlySpan<byte> codes, ReadOnlySpan<byte> scales, ReadOnlySpan<float> outerScales,
        int rows, int cols, BlockAxis axis, QuantSpec spec, long[]? shape = null, ScalarType dtype = ScalarType.Float32)
    {
        if (spec.Format == QuantFormat.None) throw new ArgumentException("an unquantized tensor has no packed form");
        long n = (long)rows * cols;
        int nScales = ScaleCount(rows, cols, axis, spec), nOuter = OuterCount(rows, cols, axis, spec);
        if (codes.Length < n || scales.Length < nScales || outerScales.Length < nOuter)
            throw new ArgumentException($"shape [{rows}, {cols}] needs {n} codes, {nScales} scales and {nOuter} outer scales; got {codes.Length}, {scales.Length}, {outerScales.Length}");
        var packed = new byte[CodeBytes(spec, n)];
        if (spec.Format == QuantFormat.MXFP8) codes[..(int)n].CopyTo(packed);
        else
            for (long i = 0; i < n; i++)
                packed[i >> 1] |= (byte)((codes[(int)i] & 0xF) << (int)((i & 1) * 4));
        bool byRow = spec.Tile16 || axis == BlockAxis.Last;
        long lines = spec.Tile16 ? rows / 16 : byRow ? rows : cols;
        long Per(long total) => lines == 0 ? 0 : total / lines;
        long codeLines = byRow ? rows : cols;
        // A line of an odd number of FP4 codes shares its last byte with the next line: then the codes stay flat.
        var c = codeLines > 0 && packed.Length % codeLines == 0 && (Fp8Of(spec) || (n / codeLines) % 2 == 0)
            ? tensor(packed).view(codeLines, packed.Length / codeLines) : tensor(packed);
        var s = tensor(scales[..nScales].ToArray()).view(lines, Per(nScales));
        var o = spec.Format == QuantFormat.NVFP4
            ? tensor(outerScales[..nOuter].ToArray()).view(lines, Per(nOuter))
            : tensor(outerScales[..nOuter].ToArray());
        return new PackedTensor(spec, axis, shape ?? [rows, cols], rows, cols, dtype, c, s, o);
    }

    /// <summary>The code of element <paramref name="k"/> in storage order (CPU storage).</summary>
    int Code(ReadOnlySpan<byte> codes, long k) => Fp8 ? codes[(int)k] : (codes[(int)(k >> 1)] >> (int)((k & 1) * 4)) & 0xF;

    /// <summary>
    /// The reference decode: writes the dequantized [Rows, Cols] values (row-major) of CPU storage to <paramref name="y"/>,
    /// bit for bit the quantizer's output (as float32).
    /// </summary>
    public void Dequantize(Span<float> y)
    {
        if (y.Length < Count) throw new ArgumentException($"need {Count} elements, got {y.Length}");
        if (Device.type != DeviceType.CPU) throw new InvalidOperationException("the reference decode reads CPU storage; use Dequantize()");
        var codes = TensorMemory.Bytes(Codes.contiguous());
        var scales = TensorMemory.Bytes(Scales.contiguous());
        ReadOnlySpan<float> outer = OuterScales.numel() == 0 ? default : TensorMemory.Floats(OuterScales.contiguous());
        if (Spec.Tile16)
        {
            int tileCols = Cols / 16;
            for (int r = 0; r < Rows; r++)
                for (int c = 0; c < Cols; c++)
                {
                    long i = (long)r * Cols + c;
                    y[(int)i] = E2M1.Decode(Code(codes, i)) * (E4M3.Decode(scales[r / 16 * tileCols + c / 16]) * outer[0]);
                }
            return;
        }
        int lines = Lines, len = Length, block = Spec.Block, blocksPerLine = (len + block - 1) / block, outerPerLine = (len + 127) / 128;
        for (int line = 0; line < lines; line++)
            for (int pos = 0; pos < len; pos++)
            {
                long k = (long)line * len + pos;
                int i = Axis == BlockAxis.Last ? line * Cols + pos : pos * Cols + line;
                byte scale = scales[line * blocksPerLine + pos / block];
                y[i] = Spec.Format switch
                {
                    QuantFormat.MXFP4 => E2M1.Decode(Code(codes, k)) * E8M0.Decode(scale),
                    QuantFormat.MXFP8 => E4M3.Decode((byte)Code(codes, k)) * E8M0.Decode(scale),
                    // The quantizer's scale is the FP32 product s_i·s_o; multiply by it once, as it does.
                    QuantFormat.NVFP4 => E2M1.Decode(Code(codes, k)) * (E4M3.Decode(scale) * outer[line * outerPerLine + pos / 128]),
                    _ => E2M1.Decode(Code(codes, k)) * (E4M3.Decode(scale) * outer[0]),
                };
            }
    }

    /// <summary>
    /// The dequantized tensor in the original shape and dtype, on the storage's device: one pass of the GPU kernel or
    /// the CPU loop for a last-axis FP4 or MXFP8 storage, else the reference decode.
    /// </summary>
    public Tensor Dequantize()
    {
        using var scope = NewDisposeScope();
        bool fast = Axis == BlockAxis.Last && Plans.Dataflow.HasStorage((int)Spec.Format, Spec.Tile16);
        Tensor y;
        if (fast && Device.type == DeviceType.CUDA)
        {
            y = empty(new long[] { Rows, Cols }, DType, Device);
            var runner = CudaRunner.ForDevice(Device.index < 0 ? 0 : Device.index);
            var unpack = Spec.Format switch { QuantFormat.MXFP4 => MxUnpack, QuantFormat.MXFP8 => Mx8Unpack, _ => NvUnpack };
            runner.Launch(unpack.For(DType == ScalarType.BFloat16), KernelGeometry.UnpackThreads(Count),
            [
                KernelArg.View(DeviceTensors.View(Codes)), KernelArg.View(DeviceTensors.View(Scales)), KernelArg.View(DeviceTensors.View(OuterScales)),
                KernelArg.View(DeviceTensors.View(y)), KernelArg.Long(Count),
            ]);
        }
        else if (fast && Device.type == DeviceType.CPU)
        {
            y = empty(new long[] { Rows, Cols }, ScalarType.Float32);
            unsafe
            {
                fixed (byte* pc = TensorMemory.Bytes(Codes), ps = TensorMemory.Bytes(Scales))
                fixed (float* po = TensorMemory.Floats(OuterScales), py = TensorMemory.Floats(y))
                    CpuPacking.Unpack(pc, ps, po, py, Rows, Cols, Spec);
            }
            y = y.to(DType);
        }
        else
        {
            using var cpu = Device.type == DeviceType.CPU ? null : To(CPU);
            var host = empty(new long[] { Rows, Cols }, ScalarType.Float32);
            (cpu ?? this).Dequantize(TensorMemory.Floats(host));
            y = host.to(DType).to(Device);
        }
        return y.reshape(Shape).MoveToOuterDisposeScope();
    }

    static readonly GpuKernel MxUnpack = LibraryKernels.Unpack(new QuantSpec(QuantFormat.MXFP4)), NvUnpack = LibraryKernels.Unpack(new QuantSpec(QuantFormat.NVFP4)),
        Mx8Unpack = LibraryKernels.Unpack(new QuantSpec(QuantFormat.MXFP8));

    /// <summary>A copy on <paramref name="device"/>.</summary>
    public PackedTensor To(Device device) =>
        new(Spec, Axis, Shape, Rows, Cols, DType, Codes.to(device), Scales.to(device), OuterScales.to(device));

    /// <summary>Moves the tensors to the enclosing dispose scope.</summary>
    public PackedTensor MoveToOuterDisposeScope()
    {
        Codes.MoveToOuterDisposeScope();
        Scales.MoveToOuterDisposeScope();
        OuterScales.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Takes the tensors out of any dispose scope: the owner disposes them.</summary>
    public PackedTensor DetachFromDisposeScope()
    {
        Codes.DetachFromDisposeScope();
        Scales.DetachFromDisposeScope();
        OuterScales.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Codes.Dispose();
        Scales.Dispose();
        OuterScales.Dispose();
    }
}
