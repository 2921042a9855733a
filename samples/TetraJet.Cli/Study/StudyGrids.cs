namespace TetraJet.Cli.Study;

/// <summary>
/// The named grids of issue 15's study (docs/RESULTS.md, "The multi-seed study"). Their lengths are planned for the
/// GPU (an H200): about 3 minutes per GPT-70m run and 1–2 per ViT run, each grid resumable across sessions.
/// The data paths point at <c>bench/data/</c>, which <c>bench/prepare-data.sh</c> fills (not in the repository).
/// </summary>
public static class StudyGrids
{
    static readonly string[] Cuda = ["--device", "cuda", "--log-every", "100"];

    /// <summary>
    /// GPT-70m on the King James Bible plus GCIDE (bench/data/english.txt.gz, 14.3M training tokens with the default
    /// 1,024-merge tokenizer): 700 steps of 32 × 1024 tokens are 22.9M tokens, 1.6 passes, so that a run sees each
    /// training token at most about twice.
    /// </summary>
    public static readonly StudyGrid GptRecipes = new()
    {
        Name = "gpt-recipes",
        Description = "GPT-70m, 700 steps of 32 sequences of 1024 tokens on bench/data/english.txt.gz; validation perplexity",
        Model = "gpt",
        Args = ["--size", "70m", "--steps", "700", "--batch", "32", "--eval-every", "100", "--data", "bench/data/english.txt.gz", .. Cuda],
        Cells =
        [
            new("BF16", ["--recipe", "bf16"]),
            new("NVIDIA NVFP4", ["--recipe", "nvidia-nvfp4"]),
            new("TetraJet-v2", ["--recipe", "tetrajet-v2"]),
            new("TetraJet-v2 +OsciReset", ["--recipe", "tetrajet-v2", "--osci-reset"]),
            new("TetraJet-v2 +OutControl", ["--recipe", "tetrajet-v2", "--out-control"]),
            new("TetraJet-v2 +both", ["--recipe", "tetrajet-v2", "--osci-reset", "--out-control"]),
            new("Microscaling", ["--recipe", "microscaling"]),
            new("TetraJet", ["--recipe", "tetrajet"]),
        ],
        Gaps =
        [
            new("NVIDIA NVFP4", "TetraJet-v2", "BF16"),
            new("NVIDIA NVFP4", "TetraJet-v2 +both", "BF16"),
            new("Microscaling", "TetraJet", "BF16"),
        ],
    };

    /// <summary>ViT-tiny (DeiT-T) on the full 60,000 Fashion-MNIST images (bench/data/fashion-mnist), 5 epochs.</summary>
    public static readonly StudyGrid VitRecipes = new()
    {
        Name = "vit-recipes",
        Description = "ViT tiny (DeiT-T), 5 epochs of the 60,000 Fashion-MNIST training images (bench/data/fashion-mnist), batch 128; test accuracy",
        Model = "vit",
        Args = ["--size", "tiny", "--epochs", "5", "--batch", "128", "--data", "bench/data/fashion-mnist", .. Cuda],
        Cells =
        [
            new("BF16", ["--recipe", "bf16"]),
            new("Microscaling", ["--recipe", "microscaling"]),
            new("TetraJet", ["--recipe", "tetrajet"]),
            new("TetraJet +Q-EMA", ["--recipe", "tetrajet", "--q-ema"]),
            new("TetraJet +Q-Ramping", ["--recipe", "tetrajet", "--q-ramping"]),
        ],
        Gaps =
        [
            new("Microscaling", "TetraJet", "BF16"),
            new("Microscaling", "TetraJet +Q-EMA", "BF16"),
            new("Microscaling", "TetraJet +Q-Ramping", "BF16"),
        ],
    };

    static readonly string[] SlotNames = ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"];

    /// <summary>The TetraJet recipe with only <paramref name="kept"/> quantized, the other five slots overridden to BF16.</summary>
    static StudyCell Only(string kept) =>
        new($"only {kept}", ["--recipe", "tetrajet", .. SlotNames.Where(s => s != kept).SelectMany(s => new[] { "--slot", s + "=bf16" })]);

    /// <summary>The TetraJet paper's per-quantizer ablation on the ViT task: one slot quantized at a time.</summary>
    public static readonly StudyGrid VitAblation = VitRecipes with
    {
        Name = "vit-ablation",
        Description = "ViT tiny as vit-recipes; TetraJet (MXFP4) with one slot quantized at a time, the others BF16; ranked by the accuracy lost against BF16",
        Cells = [new("BF16", ["--recipe", "bf16"]), .. SlotNames.Select(Only), new("TetraJet", ["--recipe", "tetrajet"])],
        Gaps = [],
        Ranking = new("BF16", SlotNames.Select(s => $"only {s}").ToList()),
    };

    /// <summary>A CPU demonstration of the machinery in a couple of minutes: tiny sizes, few steps, two seeds. Its numbers say nothing about the recipes.</summary>
    public static readonly StudyGrid TinyCpu = new()
    {
        Name = "tiny-cpu",
        Description = "CPU demonstration only: ViT tiny-cpu, 60 steps of 64 on 4,096 training images, 1,000 test images, 2 seeds; says nothing about the recipes",
        Model = "vit",
        Seeds = [0, 1],
        Args = ["--steps", "60", "--batch", "64", "--train-subset", "4096", "--eval-subset", "1000", "--eval-every", "20", "--noise-every", "10", "--quiet"],
        Cells =
        [
            new("BF16", ["--recipe", "bf16"]),
            new("Microscaling", ["--recipe", "microscaling"]),
            new("TetraJet", ["--recipe", "tetrajet"]),
        ],
        Gaps = [new("Microscaling", "TetraJet", "BF16")],
    };

    public static IReadOnlyList<StudyGrid> All { get; } = [GptRecipes, VitRecipes, VitAblation, TinyCpu];

    public static StudyGrid? Find(string name) => All.FirstOrDefault(g => g.Name == name);
}
