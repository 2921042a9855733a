using System.Reflection;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Kernel instantiations for a quantizer known only at run time: the bare <see cref="Quantizer"/> API and the
/// unspecialised plan of a recipe built at run time. Generated plans name their instantiations in source instead;
/// both end in the same generic kernels. Each lookup runs once per quantizer handle, never per launch.
/// </summary>
public static class LibraryKernels
{
    static MethodInfo Def(Type type, string name) => type.GetMethod(name, BindingFlags.Public | BindingFlags.Static)
        ?? throw new MissingMethodException(type.Name, name);

    static Type Round(Rounding r) => r switch
    {
        Rounding.Stochastic => typeof(RoundStochastic),
        Rounding.EmaGuided => typeof(RoundEmaGuided),
        _ => typeof(RoundNearest),
    };

    static Type MxRule(QuantSpec spec) => spec.Format == QuantFormat.MXFP8 ? typeof(Mxfp8)
        : spec.ScaleRule == ScaleRule.Ocp ? typeof(Mxfp4Ocp) : typeof(Mxfp4TetraJet);

    static Type Outer(QuantSpec spec) => spec.Format == QuantFormat.NVFP4 ? typeof(NvOuter128) : typeof(NvOuterTensor);

    static Type Had(bool hadamard) => hadamard ? typeof(WithHadamard) : typeof(NoHadamard);

    /// <summary>The features-axis kernel of <paramref name="spec"/>; with <paramref name="store"/> it also writes the storage form.</summary>
    public static GpuKernel Rows(QuantSpec spec, bool hadamard, bool store)
    {
        if (store && !Plans.Dataflow.HasStorage((int)spec.Format, spec.Tile16)) throw new ArgumentException($"{spec} has no storage form");
        var st = store ? typeof(Store) : typeof(NoStore);
        return spec.Format switch
        {
            QuantFormat.MXFP4 or QuantFormat.MXFP8 => GpuKernel.FromDefinition(Def(typeof(RowKernels), nameof(RowKernels.Mx)), MxRule(spec), Round(spec.Rounding), Had(hadamard), st),
            QuantFormat.NVFP4Tensor when spec.Tile16 => hadamard
                ? throw new ArgumentException("16x16 tiles are not combined with the Hadamard transform")
                : GpuKernel.FromDefinition(Def(typeof(RowKernels), nameof(RowKernels.NvTile16)), Round(spec.Rounding)),
            QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor => GpuKernel.FromDefinition(Def(typeof(RowKernels), nameof(RowKernels.Nv)), Outer(spec), Round(spec.Rounding), Had(hadamard), st),
            _ => throw new ArgumentException($"no kernel quantizes {spec}"),
        };
    }

    /// <summary>The first-axis kernel of <paramref name="spec"/>.</summary>
    public static GpuKernel Columns(QuantSpec spec, bool hadamard) => spec.Format switch
    {
        _ when spec.Tile16 => throw new ArgumentException("16x16 tiles quantize along the last axis"),
        QuantFormat.MXFP4 or QuantFormat.MXFP8 => GpuKernel.FromDefinition(Def(typeof(ColumnKernels), nameof(ColumnKernels.Mx)), MxRule(spec), Round(spec.Rounding), Had(hadamard)),
        QuantFormat.NVFP4 or QuantFormat.NVFP4Tensor => GpuKernel.FromDefinition(Def(typeof(ColumnKernels), nameof(ColumnKernels.Nv)), Outer(spec), Round(spec.Rounding), Had(hadamard)),
        _ => throw new ArgumentException($"no kernel quantizes {spec}"),
    };

    /// <summary>The first-axis kernel of <paramref name="target"/> reading an operand stored as <paramref name="source"/>.</summary>
    public static GpuKernel StoredColumns(QuantSpec source, QuantSpec target, bool hadamard)
    {
        if (!Plans.Dataflow.ReadsStorage((int)source.Format, source.Tile16, (int)target.Format, target.Tile16, (int)target.Rounding))
            throw new ArgumentException($"no kernel quantizes {target} from {source} storage");
        var src = source.Format == QuantFormat.NVFP4 ? typeof(StoredNv) : typeof(StoredMx);
        return target.Format == QuantFormat.MXFP4
            ? GpuKernel.FromDefinition(Def(typeof(StoredColumnKernels), nameof(StoredColumnKernels.Mx)), src, MxRule(target), Round(target.Rounding), Had(hadamard))
            : GpuKernel.FromDefinition(Def(typeof(StoredColumnKernels), nameof(StoredColumnKernels.Nv)), src, Round(target.Rounding), Had(hadamard));
    }

    /// <summary>The fused dY kernel of Q3 and Q5 sharing <paramref name="spec"/>.</summary>
    public static GpuKernel Dual(QuantSpec spec, bool hadamard)
    {
        int f = (int)spec.Format, r = (int)spec.Rounding;
        bool ocp = spec.ScaleRule == ScaleRule.Ocp && spec.Format == QuantFormat.MXFP4;
        if (!Plans.Dataflow.FusesDy(f, r, ocp, spec.Tile16, hadamard, f, r, ocp, spec.Tile16, hadamard))
            throw new ArgumentException($"no fused dY kernel for {spec}{(hadamard ? " with RHT" : "")}");
        return spec.Format == QuantFormat.MXFP4
            ? GpuKernel.FromDefinition(Def(typeof(DualKernels), nameof(DualKernels.Mx)), MxRule(spec), Round(spec.Rounding))
            : GpuKernel.FromDefinition(Def(typeof(DualKernels), nameof(DualKernels.Nv)), Round(spec.Rounding), Had(hadamard));
    }

    /// <summary>The per-tensor amax pass a per-tensor NVFP4 quantizer runs first, or null for the other formats.</summary>
    public static GpuKernel? Amax(QuantSpec spec, BlockAxis axis, bool hadamard) => spec.Format != QuantFormat.NVFP4Tensor ? null
        : !hadamard ? GpuKernel.FromDefinition(Def(typeof(AmaxKernels), nameof(AmaxKernels.Plain)))
        : GpuKernel.FromDefinition(Def(typeof(AmaxKernels), axis == BlockAxis.Last ? nameof(AmaxKernels.HadamardRows) : nameof(AmaxKernels.HadamardColumns)));

    /// <summary>The kernel that turns a last-axis storage form of <paramref name="spec"/> back into values.</summary>
    public static GpuKernel Unpack(QuantSpec spec) => spec.Format switch
    {
        QuantFormat.MXFP4 when !spec.Tile16 => GpuKernel.FromDefinition(Def(typeof(UnpackKernels), nameof(UnpackKernels.Mx))),
        QuantFormat.NVFP4 => GpuKernel.FromDefinition(Def(typeof(UnpackKernels), nameof(UnpackKernels.Nv))),
        QuantFormat.MXFP8 => GpuKernel.FromDefinition(Def(typeof(UnpackKernels), nameof(UnpackKernels.Mx8))),
        _ => throw new ArgumentException($"{spec} has no storage form to unpack on the GPU"),
    };

    // ---------------------------------------------------------------- FP8 GEMM operands (MXFP4 only, no RHT)

    static void CheckFp8(QuantSpec spec, bool fromStorage = false)
    {
        if (spec.Format != QuantFormat.MXFP4 || spec.Tile16) throw new ArgumentException($"{spec}: FP8 GEMM operands are exact for MXFP4 only");
        if (fromStorage && spec.Rounding == Rounding.EmaGuided) throw new ArgumentException($"{spec}: a re-quantizer from storage has no EMA");
    }

    /// <summary>The FP8-operand kernel of <paramref name="spec"/> along the last axis; with <paramref name="store"/> it also writes the MXFP4 storage form.</summary>
    public static GpuKernel Fp8Rows(QuantSpec spec, bool store)
    {
        CheckFp8(spec);
        return GpuKernel.FromDefinition(Def(typeof(Fp8RowKernels), nameof(Fp8RowKernels.Mx)), MxRule(spec), Round(spec.Rounding), store ? typeof(Store) : typeof(NoStore));
    }

    /// <summary>The transposed FP8-operand kernel of <paramref name="spec"/> along the first axis of a plain tensor.</summary>
    public static GpuKernel Fp8Columns(QuantSpec spec)
    {
        CheckFp8(spec);
        return GpuKernel.FromDefinition(Def(typeof(Fp8ColumnKernels), nameof(Fp8ColumnKernels.Mx)), MxRule(spec), Round(spec.Rounding));
    }

    /// <summary>The transposed FP8-operand kernel of <paramref name="target"/> along the first axis of an operand kept in MXFP4 storage.</summary>
    public static GpuKernel Fp8StoredColumns(QuantSpec source, QuantSpec target)
    {
        if (source.Format != QuantFormat.MXFP4 || source.Tile16) throw new ArgumentException($"the FP8 re-quantizers read MXFP4 storage, not {source}");
        CheckFp8(target, fromStorage: true);
        return GpuKernel.FromDefinition(Def(typeof(Fp8ColumnKernels), nameof(Fp8ColumnKernels.MxStored)), MxRule(target), Round(target.Rounding));
    }

    /// <summary>The fused dY kernel writing Q3's and Q5's FP8 operands with <paramref name="spec"/>.</summary>
    public static GpuKernel Fp8Dual(QuantSpec spec)
    {
        CheckFp8(spec, fromStorage: true);
        return GpuKernel.FromDefinition(Def(typeof(Fp8DualKernels), nameof(Fp8DualKernels.Mx)), MxRule(spec), Round(spec.Rounding));
    }

    /// <summary>The exact fallback of an FP8 GEMM (one kernel for every configuration).</summary>
    public static GpuKernel Fp8Patch() => GpuKernel.FromDefinition(Def(typeof(Fp8PatchKernels), nameof(Fp8PatchKernels.Patch)));

    /// <summary>The row broadcast (not generic: it moves 16-byte units whatever the element type).</summary>
    public static MethodInfo BroadcastRows { get; } = Def(typeof(BroadcastKernels), nameof(BroadcastKernels.Rows));

    /// <summary>The oscillation report's step and its per-step accumulation (not generic: FP32 weights only).</summary>
    public static MethodInfo OscillationObserve { get; } = Def(typeof(OscillationKernels), nameof(OscillationKernels.Observe));

    /// <summary>See <see cref="OscillationObserve"/>.</summary>
    public static MethodInfo OscillationAccumulate { get; } = Def(typeof(OscillationKernels), nameof(OscillationKernels.Accumulate));

    /// <summary>Every kernel instantiation the library can launch (the PTX compile test).</summary>
    public static IEnumerable<MethodInfo> All()
    {
        var specs = new List<QuantSpec>();
        foreach (Rounding r in Enum.GetValues<Rounding>())
        {
            specs.Add(new(QuantFormat.MXFP4, r));
            specs.Add(new(QuantFormat.MXFP4, r, ScaleRule.Ocp));
            specs.Add(new(QuantFormat.MXFP8, r));
            specs.Add(new(QuantFormat.NVFP4, r));
            specs.Add(new(QuantFormat.NVFP4Tensor, r));
            specs.Add(new(QuantFormat.NVFP4Tensor, r, Tile16: true));
        }
        var kernels = new List<GpuKernel>();
        foreach (var s in specs)
            foreach (bool had in s.Tile16 ? new[] { false } : new[] { false, true })
            {
                kernels.Add(Rows(s, had, store: false));
                if (Plans.Dataflow.HasStorage((int)s.Format, s.Tile16)) kernels.Add(Rows(s, had, store: true));
                if (!s.Tile16) kernels.Add(Columns(s, had));
                if (Amax(s, BlockAxis.Last, had) is { } a) kernels.Add(a);
                if (had && Amax(s, BlockAxis.First, had) is { } b) kernels.Add(b);
            }
        foreach (var source in new QuantSpec[] { new(QuantFormat.MXFP4), new(QuantFormat.NVFP4) })
            foreach (var target in new QuantSpec[] { new(QuantFormat.MXFP4, Rounding.Stochastic), new(QuantFormat.MXFP4, Rounding.Nearest, ScaleRule.Ocp), new(QuantFormat.NVFP4, Rounding.Stochastic) })
                foreach (bool had in new[] { false, true })
                    kernels.Add(StoredColumns(source, target, had));
        foreach (var r in new[] { Rounding.Nearest, Rounding.Stochastic })
        {
            kernels.Add(Dual(new(QuantFormat.MXFP4, r), false));
            kernels.Add(Dual(new(QuantFormat.MXFP4, r, ScaleRule.Ocp), false));
            kernels.Add(Dual(new(QuantFormat.NVFP4, r), false));
            kernels.Add(Dual(new(QuantFormat.NVFP4, r), true));
        }
        foreach (Rounding r in Enum.GetValues<Rounding>())
            foreach (var spec in new QuantSpec[] { new(QuantFormat.MXFP4, r), new(QuantFormat.MXFP4, r, ScaleRule.Ocp) })
            {
                kernels.Add(Fp8Rows(spec, store: false));
                kernels.Add(Fp8Rows(spec, store: true));
                kernels.Add(Fp8Columns(spec));
                if (r == Rounding.EmaGuided) continue;
                kernels.Add(Fp8StoredColumns(new(QuantFormat.MXFP4), spec));
                kernels.Add(Fp8Dual(spec));
            }
        kernels.Add(Fp8Patch());
        kernels.Add(Unpack(new(QuantFormat.MXFP4)));
        kernels.Add(Unpack(new(QuantFormat.NVFP4)));
        kernels.Add(Unpack(new(QuantFormat.MXFP8)));
        return kernels.SelectMany(k => new[] { k.F32, k.Bf16 }).Append(BroadcastRows).Append(OscillationObserve).Append(OscillationAccumulate).Distinct();
    }
}
