using TetraJet;
using TetraJet.IO;
using TorchSharp;
using static TorchSharp.torch;

// A model built from the TetraJet.Runtime package (plus the libtorch this app chose): the generator comes with it.
manual_seed(0);
using var model = new Classifier();
using var x = randn(4, 64);
using var y = model.call(x);

Console.WriteLine("layers: " + string.Join(", ", model.named_children().Select(c => $"{c.name} ({((QLinear)c.module).Recipe})")));
Console.WriteLine("state dict: " + string.Join(", ", model.state_dict().Keys));
Console.WriteLine($"output shape: [{string.Join(", ", y.shape)}]");

// The model for inference: MXFP4 weights in storage form, read back as Q2(W).
var file = Path.Combine(Path.GetTempPath(), $"package-consumer-{Environment.ProcessId}.safetensors");
InferenceExport.Save(model, file);
var weights = InferenceExport.LoadDequantized(file);
File.Delete(file);
Console.WriteLine($"exported: {string.Join(", ", weights.Keys.Order())}");

/// <summary>MXFP4 hidden layer, BF16 head.</summary>
[Quantize(Format.MXFP4)]
sealed partial class Classifier : nn.Module<Tensor, Tensor>
{
    [Linear(64, 128)] public partial QLinear Hidden { get; }
    [Linear(128, 10), Quantize(Format.BF16)] public partial QLinear Head { get; }

    public Classifier() : base(nameof(Classifier))
    {
        InitializeQuantization();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Head.call(nn.functional.relu(Hidden.call(x)));
}
