using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// Where a plan's quantizers run: the CPU (SIMD loops), CUDA (ILGPU kernels on torch's context and stream) or the
/// scalar reference (tests). One per device, chosen once (<see cref="For"/>); a plan's straight-line code calls it
/// with quantizer handles whose kernels were fixed when the plan was made, so nothing here looks at a format.
/// Tensors are 2-D [rows, cols], float32 or bfloat16; outputs have the input's dtype and device.
/// </summary>
public abstract class QuantBackend
{
    /// <summary>The backend of <paramref name="device"/>'s type.</summary>
    public static QuantBackend For(Device device) => device.type switch
    {
        DeviceType.CUDA => CudaBackend.Instance,
        DeviceType.CPU => CpuBackend.Instance,
        _ => throw new NotSupportedException($"TetraJet quantizes on the CPU and on CUDA devices, not on {device.type}"),
    };

    /// <summary>The scalar reference (ALGORITHMS.md line by line, on the CPU): what the tests hold the other backends to.</summary>
    public static QuantBackend Reference => ReferenceBackend.Instance;

    public abstract string Name { get; }

    /// <summary>Q(RHT?(x)) with blocks along the last axis; <paramref name="pad"/> lets a bare call's last axis be a non-multiple.</summary>
    public abstract Tensor Rows(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null, bool pad = false);

    /// <summary>As <see cref="Rows"/> for a storing quantizer, also returning the storage form written in the same pass.</summary>
    public abstract (Tensor Q, PackedTensor Stored) RowsStored(RowQuantizer q, Tensor x, SlotStreams s, Tensor? ema = null);

    /// <summary>Q(RHT?(x)) with blocks along the first axis; with <paramref name="pad"/> the rows need not be a block multiple.</summary>
    public abstract Tensor Columns(ColumnQuantizer q, Tensor x, SlotStreams s, bool pad, Tensor? ema = null);

    /// <summary>
    /// Q(RHT?(unpack(source))) along the first axis over <paramref name="rows"/> rows (≥ source rows; the rest are zero
    /// padding), reading the storage in one pass where the device has the kernel.
    /// </summary>
    public abstract Tensor ColumnsFromStored(StoredColumnQuantizer q, PackedTensor source, long rows, SlotStreams s);

    /// <summary>Q3 along the last axis and Q5 along the first (padded) from one read of dY.</summary>
    public abstract (Tensor Q3, Tensor Q5) Dual(DualQuantizer q, Tensor dy, SlotStreams s3, SlotStreams s5);

    /// <summary>The error a block axis of the wrong length gets (the RHT works on groups of 16).</summary>
    protected static void CheckShape(Tensor x, BlockAxis axis, QuantSpec spec, bool pad, bool hadamard, string what = "tensor")
    {
        if (x.dim() != 2) throw new ArgumentException($"{what}: expected a 2-D tensor, got rank {x.dim()}");
        Quantization.Reference.ReferenceQuantizer.CheckShape((int)Math.Min(x.size(0), int.MaxValue), (int)Math.Min(x.size(1), int.MaxValue), axis, spec, pad, what);
        long len = axis == BlockAxis.Last ? x.size(1) : x.size(0);
        if (hadamard && len % Hadamard.Size != 0)
            throw new ArgumentException($"{what}: the Hadamard transform needs the block axis to be a multiple of 16, got {len}");
    }

    /// <summary>Zero rows appended up to <paramref name="rows"/> (none if it has them already).</summary>
    protected static Tensor PadRows(Tensor t, long rows) => rows == t.size(0) ? t : nn.functional.pad(t, [0, 0, 0, rows - t.size(0)]);

    public override string ToString() => Name;
}
