using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Models;

/// <summary>Shape of a DeiT-style vision transformer. Image size, channels and classes come from the data.</summary>
public sealed record VitConfig(string Size, int Dim, int Depth, int Heads, int MlpDim, int PatchSize,
    int ImageSize = 28, int Channels = 1, int NumClasses = 10)
{
    public static IReadOnlyList<string> Sizes { get; } = ["tiny-cpu", "tiny", "small"];

    /// <summary>
    /// tiny-cpu trains on two CPU cores in minutes: 7×7 patches give 16 tokens + class token, and every linear
    /// has K, N multiples of 128 so that all recipes, TetraJet-v2 included, apply.
    /// tiny and small are DeiT-T and DeiT-S (patch 4 on 28×28 images instead of 16 on 224×224).
    /// </summary>
    public static VitConfig Get(string size) => size switch
    {
        "tiny-cpu" => new("tiny-cpu", Dim: 128, Depth: 4, Heads: 4, MlpDim: 256, PatchSize: 7),
        "tiny" => new("tiny", Dim: 192, Depth: 12, Heads: 3, MlpDim: 768, PatchSize: 4),
        "small" => new("small", Dim: 384, Depth: 12, Heads: 6, MlpDim: 1536, PatchSize: 4),
        _ => throw new ArgumentException($"unknown ViT size '{size}'; use {string.Join(", ", Sizes)}"),
    };

    public int Patches => (ImageSize / PatchSize) * (ImageSize / PatchSize);
}

/// <summary>Pre-norm block: x + proj(attn(qkv(LN x))), then x + fc2(GELU(fc1(LN x))).</summary>
[Quantize(Recipe.TetraJet)]   // the default; the trainer passes the run's recipe to InitializeQuantization
public sealed partial class VitBlock : nn.Module<Tensor, Tensor>
{
    readonly LayerNorm norm1, norm2;
    readonly int heads;
    // Layer sizes come from the config, so the [Linear] attributes name these members.
    readonly int Dim, QkvDim, MlpDim;

    // The block's four quantized linears (TetraJet: attention qkv + output projection, both MLP linears).
    [Linear(nameof(Dim), nameof(QkvDim))] public partial QLinear Qkv { get; }
    [Linear(nameof(Dim), nameof(Dim))] public partial QLinear Proj { get; }
    [Linear(nameof(Dim), nameof(MlpDim))] public partial QLinear Fc1 { get; }
    [Linear(nameof(MlpDim), nameof(Dim))] public partial QLinear Fc2 { get; }

    public VitBlock(VitConfig c, Recipe recipe, int index) : base($"block{index}")
    {
        heads = c.Heads;
        Dim = c.Dim; QkvDim = 3 * c.Dim; MlpDim = c.MlpDim;
        BlockRecipes.CheckFeatures(recipe, $"blocks.{index}.qkv", Dim, QkvDim);
        BlockRecipes.CheckFeatures(recipe, $"blocks.{index}.fc1", Dim, MlpDim);
        norm1 = nn.LayerNorm(c.Dim, 1e-6);
        norm2 = nn.LayerNorm(c.Dim, 1e-6);
        InitializeQuantization(recipe);
        RegisterComponents();
    }

    public IEnumerable<QLinear> Linears => [Qkv, Proj, Fc1, Fc2];

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], d = x.shape[2];
        var q = Qkv.call(norm1.call(x)).view(b, t, 3, heads, d / heads).permute(2, 0, 3, 1, 4);
        // Score and value products stay unquantized (ALGORITHMS.md §4).
        var a = nn.functional.scaled_dot_product_attention(q[0], q[1], q[2]);
        x = x + Proj.call(a.transpose(1, 2).reshape(b, t, d));
        x = x + Fc2.call(nn.functional.gelu(Fc1.call(norm2.call(x))));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>DeiT-style ViT: conv patch embedding, class token, learned positions, pre-norm blocks, LN, head.</summary>
public sealed class Vit : nn.Module<Tensor, Tensor>
{
    public VitConfig Config { get; }
    public Recipe Recipe { get; }

    readonly Conv2d patch_embed;
    readonly Parameter cls_token, pos_embed;
    readonly ModuleList<VitBlock> blocks;
    readonly LayerNorm norm;
    readonly Linear head;

    public Vit(VitConfig config, Recipe recipe) : base("Vit")
    {
        Config = config;
        Recipe = recipe;
        if (config.Dim % config.Heads != 0) throw new ArgumentException($"ViT dim {config.Dim} is not a multiple of heads {config.Heads}");
        if (config.ImageSize % config.PatchSize != 0) throw new ArgumentException($"image size {config.ImageSize} is not a multiple of patch {config.PatchSize}");
        patch_embed = nn.Conv2d(config.Channels, config.Dim, config.PatchSize, stride: config.PatchSize);
        cls_token = new Parameter(zeros(1, 1, config.Dim));
        pos_embed = new Parameter(zeros(1, config.Patches + 1, config.Dim));
        blocks = new ModuleList<VitBlock>();
        for (int i = 0; i < config.Depth; i++) blocks.Add(new VitBlock(config, BlockRecipes.ForBlock(recipe, i, config.Depth), i));
        norm = nn.LayerNorm(config.Dim, 1e-6);
        head = nn.Linear(config.Dim, config.NumClasses);
        RegisterComponents();
        Initialize();
    }

    public IEnumerable<QLinear> QuantizedLinears => blocks.SelectMany(b => b.Linears);

    /// <summary>DeiT initialisation: truncated normal (σ 0.02) for linears and tokens, zero biases.</summary>
    void Initialize()
    {
        using var _ = no_grad();
        Init.TruncNormal(cls_token, 0.02);
        Init.TruncNormal(pos_embed, 0.02);
        foreach (var l in QuantizedLinears)
        {
            Init.TruncNormal(l.weight, 0.02);
            l.bias?.zero_();
        }
        Init.TruncNormal(head.weight, 0.02);
        head.bias!.zero_();
    }

    /// <summary>Images [B, C, H, W] → logits [B, classes].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = patch_embed.call(images).flatten(2).transpose(1, 2);   // [B, patches, D]
        x = cat([cls_token.expand(x.shape[0], -1, -1), x], 1) + pos_embed;
        foreach (var b in blocks) x = b.call(x);
        var logits = head.call(norm.call(x[.., 0]));
        return logits.MoveToOuterDisposeScope();
    }
}
