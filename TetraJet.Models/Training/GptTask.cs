using TetraJet.Models.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>OLMo2-style GPT on a text corpus (byte-level BPE).</summary>
public sealed class GptTask : ITrainTask
{
    readonly TextCorpus corpus;
    readonly Gpt model;
    readonly int batch;
    readonly long seed;
    readonly int[] train, validation;
    const int MaxEvalWindows = 256;

    public GptTask(string size, Recipe recipe, TextCorpus corpus, int batch, long seed, int? trainTokens, int? evalTokens)
    {
        this.corpus = corpus; this.batch = batch; this.seed = seed;
        var config = GptConfig.Get(size) with { VocabSize = corpus.Tokenizer.VocabSize };
        train = trainTokens is int t ? corpus.Train[..Math.Min(t, corpus.Train.Length)] : corpus.Train;
        validation = evalTokens is int e ? corpus.Validation[..Math.Min(e, corpus.Validation.Length)] : corpus.Validation;
        if (train.Length < config.Context + 2 || validation.Length < config.Context + 1)
            throw new DataException($"the text is too short for a context of {config.Context} tokens; use a longer --data file or larger subsets");
        model = new Gpt(config, recipe);
    }

    public string ModelName => "gpt";
    public nn.Module<Tensor, Tensor> Net => model;
    public object Config => model.Config;
    public string SizeName => model.Config.Size;
    public string Unit => "tok/s";
    int Context => model.Config.Context;
    public int StepsPerEpoch => Math.Max(1, train.Length / (batch * Context));
    public long ItemsPerStep => (long)batch * Context;
    public double Beta2 => 0.95;

    public bool Decays(string name, Tensor p) => p.dim() >= 2 && !name.Contains("wte");

    public (Tensor Input, Tensor Target) Batch(long step)
    {
        var rng = SplitMix64.For(seed, step, 2);
        int ctx = Context;
        var x = new long[batch * ctx];
        var y = new long[batch * ctx];
        for (int b = 0; b < batch; b++)
        {
            int o = rng.NextInt(train.Length - ctx - 1);
            for (int i = 0; i < ctx; i++) { x[b * ctx + i] = train[o + i]; y[b * ctx + i] = train[o + i + 1]; }
        }
        return (tensor(x, [batch, ctx]), tensor(y, [batch, ctx]));
    }

    public (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target) =>
        (nn.functional.cross_entropy(output.view(-1, output.shape[^1]), target.view(-1)), null);

    /// <summary>Mean token loss over non-overlapping windows of the validation split (at most 256 windows).</summary>
    public EvalResult Evaluate(Device device)
    {
        using var _ = no_grad();
        bool wasTraining = model.training;
        model.eval();
        int ctx = Context;
        int windows = Math.Min(MaxEvalWindows, (validation.Length - 1) / ctx);
        double lossSum = 0; long count = 0;
        for (int w0 = 0; w0 < windows; w0 += batch)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(batch, windows - w0);
            var x = new long[n * ctx]; var y = new long[n * ctx];
            for (int b = 0; b < n; b++)
                for (int i = 0; i < ctx; i++) { int o = (w0 + b) * ctx + i; x[b * ctx + i] = validation[o]; y[b * ctx + i] = validation[o + 1]; }
            var logits = model.call(tensor(x, [n, ctx]).to(device));
            lossSum += nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), tensor(y).to(device), reduction: nn.Reduction.Sum).item<float>();
            count += n * ctx;
        }
        model.train(wasTraining);
        double loss = lossSum / count;
        return new EvalResult(loss, null, Math.Exp(loss));
    }

    /// <summary>Continues <paramref name="prompt"/> by <paramref name="tokens"/> tokens sampled at temperature 0.8 (seeded).</summary>
    public string Sample(string prompt, int tokens, long sampleSeed, Device device)
    {
        using var _ = no_grad();
        bool wasTraining = model.training;
        model.eval();
        var ids = corpus.Tokenizer.Encode(prompt).Select(i => (long)i).ToList();
        var rng = new SplitMix64((ulong)sampleSeed);
        for (int t = 0; t < tokens; t++)
        {
            using var scope = NewDisposeScope();
            var window = ids.Skip(Math.Max(0, ids.Count - Context)).ToArray();
            var logits = model.call(tensor(window, [1, window.Length]).to(device))[0, -1];
            var probs = nn.functional.softmax(logits / 0.8, 0).to(float64).cpu().data<double>().ToArray();
            double u = (rng.Next() >> 11) * (1.0 / (1UL << 53)), acc = 0;
            int pick = probs.Length - 1;
            for (int i = 0; i < probs.Length; i++) { acc += probs[i]; if (u < acc) { pick = i; break; } }
            ids.Add(pick);
        }
        model.train(wasTraining);
        return corpus.Tokenizer.Decode(ids.Select(i => (int)i));
    }

    public void Dispose() => model.Dispose();
}
