using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Samples.CustomArchitecture;

/// <summary>
/// One block of a gated MLP-Mixer: a token-mixing MLP across the sequence, then a gated (SwiGLU) channel MLP.
/// The channel layers use the class's NVFP4 recipe; the token layers mix only <see cref="Tokens"/> = 32 values, which
/// NVFP4's 128-element blocks do not divide, so they override it with MXFP4 (blocks of 32).
/// </summary>
[Quantize(Format.NVFP4)]
public sealed partial class MixerBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm tokenNorm;
    private readonly LayerNorm channelNorm;

    public MixerBlock(string name, int tokens, int width, Recipe? channelRecipe = null) : base(name)
    {
        Tokens = tokens;
        TokenHidden = 2 * tokens;
        tokenNorm = nn.LayerNorm(width);
        channelNorm = nn.LayerNorm(width);
        if (channelRecipe is null) InitializeQuantization();
        else InitializeQuantization(channelRecipe);   // a recipe from the command line for the layers without their own
        RegisterComponents();
    }

    /// <summary>Sequence length; the token MLP's sizes come from here (read when the layers are created).</summary>
    public int Tokens { get; }
    public int TokenHidden { get; }

    [Linear(nameof(Tokens), nameof(TokenHidden)), Quantize(Format.MXFP4)] public partial QLinear TokenIn { get; }
    [Linear(nameof(TokenHidden), nameof(Tokens)), Quantize(Format.MXFP4)] public partial QLinear TokenOut { get; }
    [Linear(128, 256)] public partial QLinear Gate { get; }
    [Linear(128, 256)] public partial QLinear Up { get; }
    [Linear(256, 128)] public partial QLinear Down { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Token mixing: [B, T, D] → [B, D, T], an MLP along T, back.
        var mixed = TokenOut.call(nn.functional.gelu(TokenIn.call(tokenNorm.call(x).transpose(1, 2)))).transpose(1, 2);
        x = x + mixed;
        // Channel mixing, gated: Down(silu(Gate(h)) * Up(h)).
        var h = channelNorm.call(x);
        x = x + Down.call(nn.functional.silu(Gate.call(h)) * Up.call(h));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Patch embedding (MXFP4), a stack of <see cref="MixerBlock"/>s, mean pooling and a BF16 classifier head.</summary>
public sealed partial class GatedMixer : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<MixerBlock> blocks;
    private readonly LayerNorm norm;

    public GatedMixer(int depth, int tokens, Recipe? channelRecipe = null) : base(nameof(GatedMixer))
    {
        blocks = nn.ModuleList(Enumerable.Range(0, depth).Select(i => new MixerBlock($"block{i}", tokens, 128, channelRecipe)).ToArray());
        norm = nn.LayerNorm(128);
        InitializeQuantization();
        RegisterComponents();
    }

    [Linear(32, 128), Quantize(Format.MXFP4)] public partial QLinear Embed { get; }
    [Linear(128, 10), Quantize(Format.BF16)] public partial QLinear Head { get; }

    public IEnumerable<MixerBlock> Blocks => blocks;

    public override Tensor forward(Tensor patches)
    {
        using var scope = NewDisposeScope();
        var x = Embed.call(patches);
        foreach (var block in blocks) x = block.call(x);
        return Head.call(norm.call(x).mean(new long[] { 1 })).MoveToOuterDisposeScope();
    }
}
