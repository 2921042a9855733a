using static TorchSharp.torch;

namespace TetraJet;

/// <summary>What data parallelism needs of a layer: its rank in the random streams and OutControl's norm sums.</summary>
public sealed partial class QLinear
{
    /// <summary>
    /// The data-parallel rank whose data this layer sees: folded into the key of the data slots' stochastic rounding
    /// (<see cref="LayerStreams.KeyForRank"/>). 0, the default, draws as a single process does. Not in the state dict:
    /// a checkpoint resumes on any number of ranks.
    /// </summary>
    public int StreamRank { get; set; }

    /// <summary>
    /// OutControl's per-channel norm sums while the layer is still collecting them (float64 [K] on the layer's device);
    /// null without OutControl or once its channels are fixed. Data parallelism sums them over the ranks before the
    /// update that may fix the channels, so every rank chooses the same ones.
    /// </summary>
    internal Tensor? OutControlNormsWhileCollecting =>
        _outControl && Buffer(OutStateName)[1].item<long>() == 0 ? Buffer(OutNormsName) : null;
}
