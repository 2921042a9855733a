using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;

namespace TetraJet.Plans;

/// <summary>
/// A features-axis MXFP4 quantizer (Q1, Q2, Q3) that writes its FP8 GEMM operand (<see cref="Fp8Operand"/>) and, when
/// it <see cref="Stores"/>, the MXFP4 storage form backward reads, in one pass. CUDA only: the CPU computes the same
/// operands through <see cref="RowQuantizer"/>.
/// </summary>
public sealed class Fp8RowQuantizer(QuantSpec spec, bool stores, GpuKernel gpu)
{
    public QuantSpec Spec { get; } = spec;
    public bool Stores { get; } = stores;
    public GpuKernel Gpu { get; } = gpu;

    public static Fp8RowQuantizer Of(QuantSpec spec, bool stores) => new(spec, stores, LibraryKernels.Fp8Rows(spec, stores));

    public override string ToString() => $"{Spec} along the last axis → FP8 operand{(Stores ? ", stored" : "")}";
}

/// <summary>A first-axis MXFP4 quantizer (Q5 from dY) writing the transposed FP8 operand.</summary>
public sealed class Fp8ColumnQuantizer(QuantSpec spec, GpuKernel gpu)
{
    public QuantSpec Spec { get; } = spec;
    public GpuKernel Gpu { get; } = gpu;

    public static Fp8ColumnQuantizer Of(QuantSpec spec) => new(spec, LibraryKernels.Fp8Columns(spec));

    public override string ToString() => $"{Spec} along the first axis → transposed FP8 operand";
}

/// <summary>A first-axis MXFP4 re-quantizer (Q4 from Ŵ, Q6 from X̂) reading MXFP4 storage, writing the transposed FP8 operand.</summary>
public sealed class Fp8StoredColumnQuantizer(QuantSpec source, QuantSpec spec, GpuKernel gpu)
{
    public QuantSpec Source { get; } = source;
    public QuantSpec Spec { get; } = spec;
    public GpuKernel Gpu { get; } = gpu;

    public static Fp8StoredColumnQuantizer Of(QuantSpec source, QuantSpec spec) => new(source, spec, LibraryKernels.Fp8StoredColumns(source, spec));

    public override string ToString() => $"{Spec} along the first axis from {Source} storage → transposed FP8 operand";
}

/// <summary>Q3 and Q5 from one read of dY into their FP8 operands (Q5 transposed).</summary>
public sealed class Fp8DualQuantizer(QuantSpec spec, GpuKernel gpu)
{
    public QuantSpec Spec { get; } = spec;
    public GpuKernel Gpu { get; } = gpu;

    public static Fp8DualQuantizer Of(QuantSpec spec) => new(spec, LibraryKernels.Fp8Dual(spec));

    public override string ToString() => $"{Spec} along both axes of dY → FP8 operands";
}
