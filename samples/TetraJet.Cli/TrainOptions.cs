namespace TetraJet.Cli;

/// <summary>Everything <c>tetrajet train</c> takes; null means "the default for this model and size".</summary>
public sealed record TrainOptions
{
    public string Model { get; init; } = "vit";
    public string Recipe { get; init; } = "tetrajet";
    public bool QEma { get; init; }
    public bool QRamping { get; init; }
    public bool OsciReset { get; init; }
    /// <summary>Lean OsciReset; switches OsciReset on as well.</summary>
    public bool OsciResetLean { get; init; }
    public bool OutControl { get; init; }
    /// <summary>bf16 or fp8: the tensor cores of the quantized GEMMs on CUDA (<see cref="TetraJet.Recipe.Gemm"/>).</summary>
    public string Gemm { get; init; } = "bf16";
    /// <summary>on or off: backward's Q4 and Q6 on a CUDA side stream (<see cref="TetraJet.QLinear.OverlapBackward"/>).</summary>
    public string Overlap { get; init; } = "on";
    public string Size { get; init; } = "tiny-cpu";
    public int? Steps { get; init; }
    public double? Epochs { get; init; }
    public int? Batch { get; init; }
    public double? Lr { get; init; }
    public double? WeightDecay { get; init; }
    public double? LabelSmoothing { get; init; }
    public double ClipNorm { get; init; } = 1.0;
    public double WarmupFraction { get; init; } = 0.05;
    public long Seed { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>fp32 or bf16 (linear layers under bfloat16 autocast); null: bf16 on CUDA, fp32 on the CPU.</summary>
    public string? Precision { get; init; }
    public string? Out { get; init; }
    public bool Resume { get; init; }
    public string? Data { get; init; }
    public int? EvalEvery { get; init; }
    public int? CheckpointEvery { get; init; }
    public int? StopAfter { get; init; }
    /// <summary>
    /// CUDA: wrap step N (counted from 1) in a profiler range (cuProfilerStart/Stop), so that Nsight Compute run with
    /// <c>--profile-from-start off</c> records that one step's kernels (bench/gpu-step-profile.sh).
    /// </summary>
    public int? ProfileStep { get; init; }
    public int? TrainSubset { get; init; }
    public int? EvalSubset { get; init; }
    public string Augment { get; init; } = "flip";
    public int LogEvery { get; init; } = 50;
    /// <summary>Measure the gradient-to-noise ratio every N steps (docs/DIAGNOSTICS.md); 0 is off.</summary>
    public int NoiseEvery { get; init; } = 50;
    /// <summary>Per-slot overrides, each "Qn=FORMAT" (<see cref="SlotOverrides"/>), applied after the option flags.</summary>
    public IReadOnlyList<string> Slots { get; init; } = [];
    public bool Quiet { get; init; }
    /// <summary>--gpus N: start N data-parallel processes of this command (<see cref="DataParallelLauncher"/>).</summary>
    public int? Gpus { get; init; }
    /// <summary>The command line as given (the launcher repeats it for each rank, without --gpus).</summary>
    public IReadOnlyList<string>? CommandLine { get; init; }

    /// <summary><see cref="Overlap"/> as a switch; a bad value is a usage error.</summary>
    public bool OverlapsBackward => Overlap switch
    {
        "on" => true,
        "off" => false,
        _ => throw new UsageException($"unknown --overlap '{Overlap}'; use on or off"),
    };

    public string OutDir => Out ?? Path.Combine("runs", $"{Model}-{Recipe}");

    /// <summary>The recipe with the option flags applied.</summary>
    public Recipe BuildRecipe()
    {
        TetraJet.Recipe r;
        try { r = TetraJet.Recipe.Parse(Recipe); }
        catch (ArgumentException) { throw new UsageException($"unknown recipe '{Recipe}'; use bf16, microscaling, tetrajet, nvidia-nvfp4 or tetrajet-v2"); }
        var built = r with
        {
            QEma = r.QEma || QEma, QRamping = r.QRamping || QRamping, OutControl = r.OutControl || OutControl,
            OsciReset = r.OsciReset || OsciReset || OsciResetLean, OsciResetLean = r.OsciResetLean || OsciResetLean,
            Gemm = Gemm switch
            {
                "bf16" => GemmPath.BF16,
                "fp8" => GemmPath.FP8,
                _ => throw new UsageException($"unknown --gemm '{Gemm}'; use bf16 or fp8"),
            },
        };
        built = SlotOverrides.Apply(built, Slots);
        if (built.Gemm == GemmPath.FP8 && !TetraJet.Plans.DynamicPlan.RunsFp8Gemms(built))
            throw new UsageException($"--gemm fp8: {built.Name}{(built.OutControl ? " with OutControl" : "")} does not multiply MXFP4 operands without RHT in every GEMM; " +
                "FP8 GEMMs apply to microscaling and tetrajet (without --out-control)");
        return built;
    }
}
