using TetraJet;
using TetraJet.Samples.CustomArchitecture;
using static TorchSharp.torch;

// Trains a small gated MLP-Mixer, written with the TetraJet DSL, on generated data on the CPU.
// Usage: dotnet run --project samples/CustomArchitecture -c Release [-- --recipe tetrajet-v2|tetrajet|microscaling|nvidia-nvfp4|bf16] [--steps N]
var recipeName = Option("--recipe");
var steps = int.Parse(Option("--steps") ?? "200");
const int Tokens = 32, PatchSize = 32, Classes = 10, Batch = 32, LogEvery = 20;

manual_seed(7);
// One thread: the model is small, and on a shared CPU extra threads mostly wait for each other.
set_num_threads(1);
using var model = new GatedMixer(depth: 2, Tokens, recipeName is null ? null : Recipe.Parse(recipeName));
var data = new PrototypeData(Tokens, PatchSize, Classes, seed: 11);

Console.WriteLine("layer                 in -> out   recipe");
foreach (var (name, module) in model.named_modules())
{
    if (module is QLinear layer) Console.WriteLine($"{name,-20} {layer.InFeatures,4} -> {layer.OutFeatures,-4}  {layer.Recipe}");
}
Console.WriteLine($"parameters: {model.parameters().Sum(p => p.numel())}");

// AdamW, the learning rate of each step, and after every step what the recipes' options need (Q-EMA, OsciReset,
// OutControl; Q-Ramping's calibration when CalibrationDue). Without it, a layer with such an option stops the run.
using var training = new QuantizedTraining(model, new QuantizedTrainingOptions
{
    TotalSteps = steps,
    LearningRate = 2e-3,
    WeightDecay = 0.01,
    StepsPerEpoch = 100,
});
var clock = System.Diagnostics.Stopwatch.StartNew();
for (var step = 1; step <= steps; step++)
{
    using var scope = NewDisposeScope();
    if (training.CalibrationDue) training.Calibrate(() => LossOf(data.Batch(Batch)));
    training.ZeroGrad();
    var loss = LossOf(data.Batch(Batch));
    loss.backward();
    training.Step();
    if (step % LogEvery == 0 || step == 1)
    {
        Console.WriteLine($"step {step,4}  loss {loss.item<float>():F4}  ({clock.Elapsed.TotalSeconds:F1} s)");
    }
}

using (no_grad())
using (var scope = NewDisposeScope())
{
    model.eval();
    var (x, y) = data.Batch(1024);
    var accuracy = model.call(x).argmax(1).eq(y).to_type(ScalarType.Float32).mean().item<float>();
    Console.WriteLine($"held-out accuracy: {accuracy:P1} (chance {1.0 / Classes:P0})");
}

Tensor LossOf((Tensor X, Tensor Y) batch) => nn.functional.cross_entropy(model.call(batch.X), batch.Y);

string? Option(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>
/// Each class is a fixed random sequence of patches; a sample is its class's sequence with noise and a random shift
/// along the sequence, so the model must mix across tokens as well as channels to classify it.
/// </summary>
sealed class PrototypeData(int tokens, int patchSize, int classes, int seed)
{
    private readonly Generator generator = new Generator((ulong)seed);
    private readonly Tensor prototypes = randn(new long[] { classes, tokens, patchSize }, generator: new Generator((ulong)seed + 1));

    public (Tensor X, Tensor Y) Batch(int size)
    {
        var labels = randint(classes, new long[] { size }, generator: generator);
        var x = prototypes.index(labels);
        var shift = (int)randint(tokens, new long[] { 1 }, generator: generator).item<long>();
        x = x.roll(shift, 1) + 2.5f * randn(x.shape, generator: generator);
        return (x, labels);
    }
}
