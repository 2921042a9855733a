using TetraJet.Interop;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Distributed;

/// <summary>
/// An NCCL communicator of one rank on one CUDA device. Collectives run on the legacy default stream, the stream torch
/// and the project's own kernels use, so they are ordered with the backward that wrote the gradients and the optimizer
/// step that reads them without any synchronisation (the same approach as the cuBLASLt GEMMs and the quantizers).
/// </summary>
public sealed class NcclCommunicator : ICommunicator
{
    IntPtr _comm;
    readonly IntPtr _context;

    public int Rank { get; }
    public int WorldSize { get; }
    public int DeviceIndex { get; }

    NcclCommunicator(IntPtr comm, IntPtr context, int rank, int worldSize, int deviceIndex) =>
        (_comm, _context, Rank, WorldSize, DeviceIndex) = (comm, context, rank, worldSize, deviceIndex);

    /// <summary>Whether NCCL can be loaded in this process.</summary>
    public static bool Available => Nccl.Available;

    /// <summary>NCCL's version code (e.g. 22703 for 2.27.3).</summary>
    public static int Version => Nccl.GetVersion();

    /// <summary>A fresh unique id (rank 0 creates it; <see cref="Rendezvous"/> carries it to the others).</summary>
    public static NcclUniqueId NewUniqueId() => Nccl.GetUniqueId();

    /// <summary>Joins the communicator of <paramref name="id"/> as <paramref name="rank"/> of <paramref name="worldSize"/>, on CUDA device <paramref name="deviceIndex"/>.</summary>
    public static NcclCommunicator Create(NcclUniqueId id, int rank, int worldSize, int deviceIndex)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new ArgumentException($"rank {rank} of world size {worldSize}");
        CudaDriver.Check(CudaDriver.cuInit(0), "cuInit");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int device, deviceIndex), "cuDeviceGet");
        // torch's context of the device (its primary context): NCCL binds the communicator to the current device.
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out IntPtr context, device), "cuDevicePrimaryCtxRetain");
        using (new Current(context))
            return new NcclCommunicator(Nccl.CommInitRank(worldSize, id, rank), context, rank, worldSize, deviceIndex);
    }

    /// <summary>Rendezvous (<see cref="Rendezvous.Exchange"/>) and communicator set-up from a rank's environment.</summary>
    public static NcclCommunicator FromEnvironment(DistributedEnvironment env, TimeSpan? timeout = null)
    {
        byte[] id = Rendezvous.Exchange(env, () => NewUniqueId().ToArray(), NcclUniqueId.Bytes, timeout);
        return Create(NcclUniqueId.FromArray(id), env.Rank, env.WorldSize, env.DeviceIndex);
    }

    public void AllReduce(Tensor tensor, ReduceOp op)
    {
        var (ptr, count, type) = Buffer(tensor);
        using var _ = new Current(_context);
        Nccl.AllReduce(ptr, ptr, count, type, op switch { ReduceOp.Sum => Nccl.Sum, ReduceOp.Max => Nccl.Max, _ => Nccl.Min }, _comm, CudaRunner.Stream);
    }

    public void Broadcast(Tensor tensor, int root)
    {
        var (ptr, count, type) = Buffer(tensor);
        using var _ = new Current(_context);
        Nccl.Broadcast(ptr, ptr, count, type, root, _comm, CudaRunner.Stream);
    }

    (IntPtr Pointer, nuint Count, int Type) Buffer(Tensor t)
    {
        ObjectDisposedException.ThrowIf(_comm == IntPtr.Zero, this);
        if (t.device_type != DeviceType.CUDA || t.device_index != DeviceIndex)
            throw new ArgumentException($"NCCL collectives take tensors on cuda:{DeviceIndex}, got one on {t.device}");
        if (!t.is_contiguous()) throw new ArgumentException("NCCL collectives take contiguous tensors");
        int type = t.dtype switch
        {
            ScalarType.Float32 => Nccl.Float32,
            ScalarType.BFloat16 => Nccl.BFloat16,
            ScalarType.Float16 => Nccl.Float16,
            ScalarType.Float64 => Nccl.Float64,
            ScalarType.Int64 => Nccl.Int64,
            ScalarType.Int32 => Nccl.Int32,
            ScalarType.Byte or ScalarType.Bool => Nccl.Uint8,
            ScalarType.Int8 => Nccl.Int8,
            _ => throw new ArgumentException($"NCCL has no {t.dtype} type"),
        };
        return (TensorMemory.DataPointer(t), (nuint)t.numel(), type);
    }

    /// <summary>
    /// Destroys the communicator. ncclCommDestroy may wait for work the other ranks have not finished (a rank that
    /// stops early, on a signal or an error, leaves them waiting in their next collective), so it gets 30 seconds; past
    /// them the communicator is left to the end of the process rather than hanging it.
    /// </summary>
    public void Dispose()
    {
        if (_comm == IntPtr.Zero) return;
        IntPtr comm = _comm, context = _context;
        _comm = IntPtr.Zero;
        var destroy = Task.Run(() =>
        {
            using (new Current(context)) Nccl.CommDestroy(comm);
        });
        try { destroy.Wait(TimeSpan.FromSeconds(30)); }
        catch (AggregateException) { }   // a failed destroy at the end of a run changes nothing
    }

    /// <summary>Makes torch's context of the device current for a call and restores the caller's afterwards.</summary>
    readonly struct Current : IDisposable
    {
        public Current(IntPtr context) => CudaDriver.Check(CudaDriver.cuCtxPushCurrent(context), "cuCtxPushCurrent");
        public void Dispose() => CudaDriver.cuCtxPopCurrent(out _);
    }
}
