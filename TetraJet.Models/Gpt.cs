using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Models;

/// <summary>Shape of an OLMo2-style decoder. The vocabulary comes from the tokenizer.</summary>
public sealed record GptConfig(string Size, int Dim, int Layers, int Heads, int Hidden, int Context,
    bool TiedHead, int VocabSize = 1280, double RopeTheta = 10000)
{
    public static IReadOnlyList<string> Sizes { get; } = ["tiny-cpu", "70m", "150m", "370m"];

    /// <summary>
    /// 70m/150m/370m follow the TetraJet-v2 paper's widths and depths (head dim 64, SwiGLU hidden ≈ 8/3·d rounded
    /// up to a multiple of 128, untied head); their parameter counts here are smaller than the names say because
    /// the vocabulary is the small shipped BPE, not a 50k one. tiny-cpu trains on two CPU cores.
    /// </summary>
    public static GptConfig Get(string size) => size switch
    {
        "tiny-cpu" => new("tiny-cpu", Dim: 128, Layers: 4, Heads: 4, Hidden: 384, Context: 128, TiedHead: true),
        "70m" => new("70m", Dim: 512, Layers: 8, Heads: 8, Hidden: 1408, Context: 1024, TiedHead: false),
        "150m" => new("150m", Dim: 768, Layers: 12, Heads: 12, Hidden: 2048, Context: 1024, TiedHead: false),
        "370m" => new("370m", Dim: 1024, Layers: 16, Heads: 16, Hidden: 2816, Context: 1024, TiedHead: false),
        _ => throw new ArgumentException($"unknown GPT size '{size}'; use {string.Join(", ", Sizes)}"),
    };
}

/// <summary>RMSNorm with a learned gain (no bias).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double eps;

    public RmsNorm(int dim, double eps = 1e-6) : base("RmsNorm")
    {
        this.eps = eps;
        weight = new Parameter(ones(dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = x * rsqrt(x.pow(2).mean([-1], keepdim: true) + eps) * weight;
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// OLMo2 block (norms after each sublayer): h = x + norm(attn(x)); out = h + norm(mlp(h)). QK-norm on the full q
/// and k, RoPE, SwiGLU, no biases.
/// </summary>
[Quantize(Recipe.TetraJetV2)]   // the default; the trainer passes the run's recipe to InitializeQuantization
public sealed partial class GptBlock : nn.Module<Tensor, Tensor>
{
    readonly RmsNorm q_norm, k_norm, attn_norm, mlp_norm;
    readonly int heads, hidden;
    readonly Rope rope;
    // Layer sizes come from the config, so the [Linear] attributes name these members.
    readonly int Dim, QkvDim, GateUpDim, Hidden;

    // The block's four quantized linears (TetraJet-v2): fused q/k/v, attention output, fused SwiGLU gate+up, down.
    [Linear(nameof(Dim), nameof(QkvDim), bias: false)] public partial QLinear Qkv { get; }
    [Linear(nameof(Dim), nameof(Dim), bias: false)] public partial QLinear O { get; }
    [Linear(nameof(Dim), nameof(GateUpDim), bias: false)] public partial QLinear GateUp { get; }
    [Linear(nameof(Hidden), nameof(Dim), bias: false)] public partial QLinear Down { get; }

    internal GptBlock(GptConfig c, Recipe recipe, int index, Rope rope) : base($"block{index}")
    {
        heads = c.Heads;
        hidden = c.Hidden;
        this.rope = rope;
        Dim = c.Dim; QkvDim = 3 * c.Dim; GateUpDim = 2 * c.Hidden; Hidden = c.Hidden;
        BlockRecipes.CheckFeatures(recipe, $"blocks.{index}.qkv", Dim, QkvDim);
        BlockRecipes.CheckFeatures(recipe, $"blocks.{index}.gate_up", Dim, GateUpDim);
        InitializeQuantization(recipe);
        q_norm = new RmsNorm(c.Dim);
        k_norm = new RmsNorm(c.Dim);
        attn_norm = new RmsNorm(c.Dim);
        mlp_norm = new RmsNorm(c.Dim);
        RegisterComponents();
    }

    public IEnumerable<QLinear> Linears => [Qkv, O, GateUp, Down];

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], d = x.shape[2], hd = d / heads;
        var parts = Qkv.call(x).chunk(3, -1);
        var q = rope.Apply(q_norm.call(parts[0]).view(b, t, heads, hd).transpose(1, 2));
        var k = rope.Apply(k_norm.call(parts[1]).view(b, t, heads, hd).transpose(1, 2));
        var v = parts[2].view(b, t, heads, hd).transpose(1, 2);
        var a = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        x = x + attn_norm.call(O.call(a.transpose(1, 2).reshape(b, t, d)));
        var gu = GateUp.call(x).chunk(2, -1);
        x = x + mlp_norm.call(Down.call(nn.functional.silu(gu[0]) * gu[1]));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embedding (rotate-half form); tables are cached per length and device, not saved.</summary>
sealed class Rope(int headDim, double theta)
{
    Tensor? cos, sin;

    public Tensor Apply(Tensor x)   // [B, H, T, hd]
    {
        long t = x.shape[2];
        // Device is a class without value equality: compare its parts, or the tables are rebuilt on every call.
        if (cos is null || cos.shape[0] < t || cos.device_type != x.device_type || cos.device_index != x.device_index)
        {
            cos?.Dispose(); sin?.Dispose();
            using var inv = pow(theta, -arange(0, headDim, 2, float64) / headDim);
            using var ang = outer(arange(t, float64), inv);
            using var full = cat([ang, ang], -1);
            cos = full.cos().to(float32).to(x.device).DetachFromDisposeScope();
            sin = full.sin().to(float32).to(x.device).DetachFromDisposeScope();
        }
        using var scope = NewDisposeScope();
        var c = cos[..(int)t]; var s = sin![..(int)t];
        var halves = x.chunk(2, -1);
        var rotated = cat([-halves[1], halves[0]], -1);
        return (x * c + rotated * s).MoveToOuterDisposeScope();
    }
}

/// <summary>OLMo2-style GPT: token embedding, blocks, final RMSNorm, tied or untied LM head.</summary>
public sealed class Gpt : nn.Module<Tensor, Tensor>
{
    public GptConfig Config { get; }
    public Recipe Recipe { get; }

    readonly Embedding wte;
    readonly ModuleList<GptBlock> blocks;
    readonly RmsNorm norm;
    readonly Linear? lm_head;

    public Gpt(GptConfig config, Recipe recipe) : base("Gpt")
    {
        Config = config;
        Recipe = recipe;
        if (config.Dim % config.Heads != 0 || config.Dim / config.Heads % 2 != 0)
            throw new ArgumentException($"GPT dim {config.Dim} must split into {config.Heads} heads of even size");
        var rope = new Rope(config.Dim / config.Heads, config.RopeTheta);
        wte = nn.Embedding(config.VocabSize, config.Dim);
        blocks = new ModuleList<GptBlock>();
        for (int i = 0; i < config.Layers; i++) blocks.Add(new GptBlock(config, BlockRecipes.ForBlock(recipe, i, config.Layers), i, rope));
        norm = new RmsNorm(config.Dim);
        lm_head = config.TiedHead ? null : nn.Linear(config.Dim, config.VocabSize, hasBias: false);
        RegisterComponents();
        Initialize();
    }

    public IEnumerable<QLinear> QuantizedLinears => blocks.SelectMany(b => b.Linears);

    /// <summary>OLMo2 initialisation: truncated normal σ 0.02 for embeddings and linears.</summary>
    void Initialize()
    {
        using var _ = no_grad();
        Init.TruncNormal(wte.weight!, 0.02);
        foreach (var l in QuantizedLinears) Init.TruncNormal(l.weight, 0.02);
        if (lm_head is not null) Init.TruncNormal(lm_head.weight!, 0.02);
    }

    /// <summary>Token ids [B, T] (int64) → logits [B, T, vocab].</summary>
    public override Tensor forward(Tensor tokens)
    {
        if (tokens.shape[1] > Config.Context) throw new ArgumentException($"sequence of {tokens.shape[1]} tokens exceeds the context of {Config.Context}");
        using var scope = NewDisposeScope();
        var x = wte.call(tokens);
        foreach (var b in blocks) x = b.call(x);
        x = norm.call(x);
        var logits = lm_head is null ? nn.functional.linear(x, wte.weight!) : lm_head.call(x);
        return logits.MoveToOuterDisposeScope();
    }
}
