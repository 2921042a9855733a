using static TorchSharp.torch;

namespace TetraJet;

/// <summary>Model-wide operations over every <see cref="QLinear"/> of a module tree.</summary>
public static class QuantizationExtensions
{
    /// <summary>All quantized linears with their module paths, in registration order.</summary>
    public static IEnumerable<(string Path, QLinear Layer)> QuantizedLinears(this nn.Module model)
    {
        foreach (var (name, module) in model.named_modules())
            if (module is QLinear q) yield return (name, q);
    }

    /// <summary>Gives every QLinear a layer id from its module path and the run seed, so streams differ per layer.</summary>
    public static void AssignLayerIds(this nn.Module model, ulong seed)
    {
        foreach (var (path, layer) in model.QuantizedLinears())
        {
            layer.LayerId = LayerStreams.IdOf(path);
            layer.Seed = seed;
        }
    }

    /// <summary>Sets the step counter of every QLinear (on resume, to continue the same random streams).</summary>
    public static void SetQuantizationStep(this nn.Module model, long step)
    {
        foreach (var (_, layer) in model.QuantizedLinears()) layer.Step = step;
    }
}
