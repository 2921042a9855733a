using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>Validation numbers of one evaluation.</summary>
public sealed record EvalResult(double Loss, double? Accuracy, double? Perplexity);

/// <summary>A model plus its data: what <see cref="TaskTrainer"/> needs to know about ViT or GPT.</summary>
public interface ITrainTask : IDisposable
{
    /// <summary>"vit" or "gpt": the model family, recorded in checkpoints.</summary>
    string ModelName { get; }
    nn.Module<Tensor, Tensor> Net { get; }
    /// <summary>Model config, serialised into checkpoints and summaries.</summary>
    object Config { get; }
    string SizeName { get; }
    string Unit { get; }
    int StepsPerEpoch { get; }
    /// <summary>Images or tokens per step (throughput).</summary>
    long ItemsPerStep { get; }
    double Beta2 { get; }
    /// <summary>Parameters that get weight decay: matrices of linears and convolutions.</summary>
    bool Decays(string name, Tensor p);
    /// <summary>The batch of <paramref name="step"/>: a pure function of the seed and step.</summary>
    (Tensor Input, Tensor Target) Batch(long step);
    /// <summary>
    /// Loss and, for classifiers, the number of correct predictions as a 0-d integer tensor on the output's device. A
    /// tensor rather than a number, so that nothing waits for the device before backward is queued: the trainer reads
    /// both after it.
    /// </summary>
    (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target);
    EvalResult Evaluate(Device device);
}
