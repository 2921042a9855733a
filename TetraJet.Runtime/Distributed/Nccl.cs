using System.Runtime.InteropServices;

namespace TetraJet.Distributed;

/// <summary>NCCL's unique id: 128 opaque bytes that rank 0 creates and every rank passes to ncclCommInitRank.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Data[Bytes];

    public readonly byte[] ToArray()
    {
        var a = new byte[Bytes];
        fixed (byte* p = Data) new ReadOnlySpan<byte>(p, Bytes).CopyTo(a);
        return a;
    }

    public static NcclUniqueId FromArray(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Bytes) throw new ArgumentException($"an NCCL unique id is {Bytes} bytes, got {bytes.Length}");
        var id = new NcclUniqueId();
        bytes.CopyTo(new Span<byte>(id.Data, Bytes));
        return id;
    }
}

/// <summary>
/// The NCCL entry points data parallelism uses, from <c>libnccl.so.2</c> loaded at run time (TorchSharp has no
/// torch.distributed; the NCCL that ships with a CUDA PyTorch is used as is). Values are those of nccl.h (2.10 and
/// later: bfloat16 and the average op exist from 2.10).
/// </summary>
internal static unsafe class Nccl
{
    // ncclDataType_t
    public const int Int8 = 0, Uint8 = 1, Int32 = 2, Int64 = 4, Float16 = 6, Float32 = 7, Float64 = 8, BFloat16 = 9;
    // ncclRedOp_t
    public const int Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4;

    static readonly Lazy<IntPtr> Library = new(() => NcclLibrary.Load());

    /// <summary>Whether libnccl.so.2 could be loaded (false, never an exception).</summary>
    public static bool Available
    {
        get
        {
            try { return Library.Value != IntPtr.Zero; }
            catch (DllNotFoundException) { return false; }
        }
    }

    static IntPtr Fn(string name) => NativeLibrary.GetExport(Library.Value, name);

    static readonly Lazy<IntPtr> pGetVersion = new(() => Fn("ncclGetVersion"));
    static readonly Lazy<IntPtr> pGetUniqueId = new(() => Fn("ncclGetUniqueId"));
    static readonly Lazy<IntPtr> pCommInitRank = new(() => Fn("ncclCommInitRank"));
    static readonly Lazy<IntPtr> pAllReduce = new(() => Fn("ncclAllReduce"));
    static readonly Lazy<IntPtr> pBroadcast = new(() => Fn("ncclBroadcast"));
    static readonly Lazy<IntPtr> pCommDestroy = new(() => Fn("ncclCommDestroy"));
    static readonly Lazy<IntPtr> pCommAbort = new(() => Fn("ncclCommAbort"));
    static readonly Lazy<IntPtr> pGetErrorString = new(() => Fn("ncclGetErrorString"));
    static readonly Lazy<IntPtr> pGetLastError = new(() => NativeLibrary.TryGetExport(Library.Value, "ncclGetLastError", out var p) ? p : IntPtr.Zero);

    public static int GetVersion()
    {
        int v;
        Check(((delegate* unmanaged<int*, int>)pGetVersion.Value)(&v), "ncclGetVersion");
        return v;
    }

    public static NcclUniqueId GetUniqueId()
    {
        NcclUniqueId id;
        Check(((delegate* unmanaged<NcclUniqueId*, int>)pGetUniqueId.Value)(&id), "ncclGetUniqueId");
        return id;
    }

    public static IntPtr CommInitRank(int worldSize, NcclUniqueId id, int rank)
    {
        IntPtr comm;
        Check(((delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int>)pCommInitRank.Value)(&comm, worldSize, id, rank), "ncclCommInitRank");
        return comm;
    }

    public static void AllReduce(IntPtr send, IntPtr recv, nuint count, int type, int op, IntPtr comm, IntPtr stream) =>
        Check(((delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)pAllReduce.Value)(send, recv, count, type, op, comm, stream),
            "ncclAllReduce", comm);

    public static void Broadcast(IntPtr send, IntPtr recv, nuint count, int type, int root, IntPtr comm, IntPtr stream) =>
        Check(((delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)pBroadcast.Value)(send, recv, count, type, root, comm, stream),
            "ncclBroadcast", comm);

    public static int CommDestroy(IntPtr comm) => ((delegate* unmanaged<IntPtr, int>)pCommDestroy.Value)(comm);

    public static int CommAbort(IntPtr comm) => ((delegate* unmanaged<IntPtr, int>)pCommAbort.Value)(comm);

    /// <summary>NCCL's text for a result code (ncclGetErrorString).</summary>
    public static string ErrorString(int result) =>
        Marshal.PtrToStringUTF8(((delegate* unmanaged<int, IntPtr>)pGetErrorString.Value)(result)) ?? $"NCCL error {result}";

    /// <summary>Throws with NCCL's own message (and the communicator's last error, where NCCL has ncclGetLastError).</summary>
    public static void Check(int result, string what, IntPtr comm = default)
    {
        if (result == 0) return;
        string detail = "";
        if (pGetLastError.Value != IntPtr.Zero)
            detail = Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr, IntPtr>)pGetLastError.Value)(comm)) ?? "";
        throw new InvalidOperationException($"NCCL: {what} failed with {result} ({ErrorString(result)})" + (detail.Length > 0 ? $": {detail}" : ""));
    }
}
