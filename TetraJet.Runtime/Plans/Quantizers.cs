using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Plans;

/// <summary>The random inputs of one quantizer call: the Philox key, the SR stream and the RHT signs of its GEMM pair.</summary>
public readonly record struct SlotStreams(ulong Seed, ulong Stream, uint Signs);

/// <summary>
/// A features-axis quantizer (Q1, Q2, Q3) of one configuration: its numbers, whether it applies the RHT and keeps
/// the storage form, and its kernels on each backend, all fixed when it is made. Generated plans pass their own
/// kernel entry points; <see cref="Of"/> instantiates the library's for a quantizer known only at run time.
/// </summary>
public sealed class RowQuantizer
{
    public RowQuantizer(QuantSpec spec, bool hadamard, bool stores, GpuKernel gpu, GpuKernel? gpuAmax)
    {
        if (spec.Format == QuantFormat.None) throw new ArgumentException("an unquantized slot has no quantizer");
        if (stores && !Dataflow.HasStorage((int)spec.Format, spec.Tile16)) throw new ArgumentException($"{spec} has no storage form");
        if ((spec.Format == QuantFormat.NVFP4Tensor) != (gpuAmax is not null)) throw new ArgumentException($"{spec}: a per-tensor format needs its amax kernel, others none");
        (Spec, Hadamard, Stores, Gpu, GpuAmax) = (spec, hadamard, stores, gpu, gpuAmax);
        Cpu = CpuQuantizer.Prepare(spec, BlockAxis.Last);
    }

    public QuantSpec Spec { get; }
    public bool Hadamard { get; }
    /// <summary>Writes the operand's storage form in the same pass (the saved X̂ or Ŵ).</summary>
    public bool Stores { get; }
    public GpuKernel Gpu { get; }
    /// <summary>The per-tensor amax pass (per-tensor NVFP4 only).</summary>
    public GpuKernel? GpuAmax { get; }
    public CpuKernel Cpu { get; }

    /// <summary>A quantizer with the library's kernels.</summary>
    public static RowQuantizer Of(QuantSpec spec, bool hadamard = false, bool stores = false) =>
        new(spec, hadamard, stores, LibraryKernels.Rows(spec, hadamard, stores), LibraryKernels.Amax(spec, BlockAxis.Last, hadamard));

    public override string ToString() => $"{Spec} along the last axis{(Hadamard ? " + RHT" : "")}{(Stores ? ", stored" : "")}";
}

/// <summary>A first-axis quantizer (Q4, Q5, Q6) from a plain tensor; as <see cref="RowQuantizer"/>.</summary>
public sealed class ColumnQuantizer
{
    public ColumnQuantizer(QuantSpec spec, bool hadamard, GpuKernel gpu, GpuKernel? gpuAmax)
    {
        if (spec.Format == QuantFormat.None || spec.Tile16) throw new ArgumentException($"{spec} does not quantize along the first axis");
        if ((spec.Format == QuantFormat.NVFP4Tensor) != (gpuAmax is not null)) throw new ArgumentException($"{spec}: a per-tensor format needs its amax kernel, others none");
        (Spec, Hadamard, Gpu, GpuAmax) = (spec, hadamard, gpu, gpuAmax);
        Cpu = CpuQuantizer.Prepare(spec, BlockAxis.First);
    }

    public QuantSpec Spec { get; }
    public bool Hadamard { get; }
    public GpuKernel Gpu { get; }
    public GpuKernel? GpuAmax { get; }
    public CpuKernel Cpu { get; }

    /// <summary>Rows of a thread's run in the GPU kernel: a block (MX), an outer block (NVFP4) or an inner block (per-tensor).</summary>
    internal int Run => Spec.Format switch { QuantFormat.NVFP4 => 128, QuantFormat.NVFP4Tensor => 16, _ => 32 };

    public static ColumnQuantizer Of(QuantSpec spec, bool hadamard = false) =>
        new(spec, hadamard, LibraryKernels.Columns(spec, hadamard), LibraryKernels.Amax(spec, BlockAxis.First, hadamard));

    public override string ToString() => $"{Spec} along the first axis{(Hadamard ? " + RHT" : "")}";
}

/// <summary>A first-axis quantizer (Q4, Q6) that reads its source in storage form in one pass.</summary>
public sealed class StoredColumnQuantizer
{
    public StoredColumnQuantizer(QuantSpec source, QuantSpec target, bool hadamard, GpuKernel gpu)
    {
        if (!Dataflow.ReadsStorage((int)source.Format, source.Tile16, (int)target.Format, target.Tile16, (int)target.Rounding))
            throw new ArgumentException($"{target} does not read {source} storage");
        (Source, Spec, Hadamard, Gpu) = (source, target, hadamard, gpu);
        Cpu = CpuQuantizer.Prepare(target, BlockAxis.First);
    }

    public QuantSpec Source { get; }
    public QuantSpec Spec { get; }
    public bool Hadamard { get; }
    public GpuKernel Gpu { get; }
    /// <summary>The CPU kernel, run on the unpacked source (the CPU path unpacks first: same bits).</summary>
    public CpuKernel Cpu { get; }

    internal int Run => Spec.Format == QuantFormat.NVFP4 ? 128 : 32;

    public static StoredColumnQuantizer Of(QuantSpec source, QuantSpec target, bool hadamard = false) =>
        new(source, target, hadamard, LibraryKernels.StoredColumns(source, target, hadamard));

    public override string ToString() => $"{Spec} along the first axis from {Source} storage{(Hadamard ? " + RHT" : "")}";
}

/// <summary>Q3 and Q5 from one read of dY (<see cref="Dataflow.FusesDy"/>): the same spec along N and along T.</summary>
public sealed class DualQuantizer
{
    public DualQuantizer(QuantSpec spec, bool hadamard, GpuKernel gpu)
    {
        int f = (int)spec.Format, r = (int)spec.Rounding;
        bool ocp = spec.ScaleRule == ScaleRule.Ocp && spec.Format == QuantFormat.MXFP4;
        if (!Dataflow.FusesDy(f, r, ocp, spec.Tile16, hadamard, f, r, ocp, spec.Tile16, hadamard)) throw new ArgumentException($"{spec} has no fused dY quantizer");
        (Spec, Hadamard, Gpu) = (spec, hadamard, gpu);
        Last = CpuQuantizer.Prepare(spec, BlockAxis.Last);
        First = CpuQuantizer.Prepare(spec, BlockAxis.First);
    }

    public QuantSpec Spec { get; }
    public bool Hadamard { get; }
    public GpuKernel Gpu { get; }
    public CpuKernel Last { get; }
    public CpuKernel First { get; }

    internal int Run => Spec.Format == QuantFormat.NVFP4 ? 128 : 32;

    public static DualQuantizer Of(QuantSpec spec, bool hadamard = false) => new(spec, hadamard, LibraryKernels.Dual(spec, hadamard));

    public override string ToString() => $"{Spec} along both axes of dY{(Hadamard ? " + RHT" : "")}";
}
