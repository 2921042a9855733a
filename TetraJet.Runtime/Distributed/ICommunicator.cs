using static TorchSharp.torch;

namespace TetraJet.Distributed;

/// <summary>A reduction of <see cref="ICommunicator.AllReduce"/>.</summary>
public enum ReduceOp { Sum, Max, Min }

/// <summary>
/// The collectives data parallelism needs, in place on contiguous tensors of the rank's device, ordered with torch's
/// work on that device. <see cref="NcclCommunicator"/> is the one training uses.
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>Replaces <paramref name="tensor"/> on every rank with the element-wise reduction over all ranks.</summary>
    void AllReduce(Tensor tensor, ReduceOp op);

    /// <summary>Replaces <paramref name="tensor"/> on every rank with rank <paramref name="root"/>'s.</summary>
    void Broadcast(Tensor tensor, int root);
}
