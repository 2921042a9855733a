using System.Runtime.InteropServices;

namespace TetraJet.Quantization.Gpu;

/// <summary>The few CUDA driver API entry points the launcher needs (libcuda.so.1, present wherever a CUDA torch runs).</summary>
internal static partial class CudaDriver
{
    const string Lib = "libcuda.so.1";

    [LibraryImport(Lib)] internal static partial int cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] internal static unsafe partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRetain(out IntPtr context, int device);
    [LibraryImport(Lib, EntryPoint = "cuCtxPushCurrent_v2")] internal static partial int cuCtxPushCurrent(IntPtr context);
    [LibraryImport(Lib, EntryPoint = "cuCtxPopCurrent_v2")] internal static partial int cuCtxPopCurrent(out IntPtr context);
    [LibraryImport(Lib)] internal static partial int cuModuleLoadData(out IntPtr module, IntPtr image);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int cuModuleGetFunction(out IntPtr function, IntPtr module, string name);
    [LibraryImport(Lib)]
    internal static partial int cuLaunchKernel(IntPtr function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, IntPtr stream, IntPtr kernelParams, IntPtr extra);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD32Async")] internal static partial int cuMemsetD32Async(IntPtr pointer, uint value, nuint count, IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuStreamSynchronize(IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(Lib)] internal static partial int cuStreamWaitEvent(IntPtr stream, IntPtr @event, uint flags);
    [LibraryImport(Lib)] internal static partial int cuEventCreate(out IntPtr @event, uint flags);
    [LibraryImport(Lib)] internal static partial int cuEventRecord(IntPtr @event, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] internal static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib)] internal static partial int cuProfilerStart();
    [LibraryImport(Lib)] internal static partial int cuProfilerStop();
    [LibraryImport(Lib)] internal static partial int cuGetErrorString(int error, out IntPtr message);

    internal const int AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76;
    /// <summary>CU_STREAM_NON_BLOCKING: the legacy default stream does not wait for this stream's work, nor it for the default's.</summary>
    internal const uint StreamNonBlocking = 1;
    /// <summary>CU_EVENT_DISABLE_TIMING: an event used only for ordering, the cheapest kind to record and wait on.</summary>
    internal const uint EventDisableTiming = 2;

    /// <summary>Throws with the driver's own message on a non-zero result.</summary>
    internal static void Check(int result, string what)
    {
        if (result == 0) return;
        string message = cuGetErrorString(result, out IntPtr p) == 0 && p != IntPtr.Zero ? Marshal.PtrToStringUTF8(p) ?? "" : "";
        throw new InvalidOperationException($"CUDA driver: {what} failed with {result} {message}");
    }
}
