using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Launches a kernel method (a generic instantiation of a <see cref="QuantKernels"/> method) over a 1-D grid.
/// View arguments are runner-specific objects (an ILGPU <c>ArrayView&lt;T&gt;</c> or a <see cref="DeviceView"/>);
/// scalars are passed as they are.
/// </summary>
public interface IKernelRunner
{
    /// <summary>Threads per group: a multiple of 32.</summary>
    int GroupSize { get; }

    void Launch(MethodInfo kernel, long threads, params object[] args);

    /// <summary>Sets one uint of a view to 0, ordered with the launches.</summary>
    void ZeroFirst(object view);
}

/// <summary>A device pointer and its element count: the layout ILGPU's PTX kernels take a view in ({ptr, length}, 16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct DeviceView(IntPtr Pointer, long Length);

/// <summary>Runs kernels through an ILGPU accelerator (the CPU accelerator in tests). Views are ILGPU <c>ArrayView&lt;T&gt;</c>.</summary>
public sealed class IlgpuRunner(Accelerator accelerator) : IKernelRunner
{
    readonly ConcurrentDictionary<MethodInfo, Kernel> kernels = new();

    public Accelerator Accelerator { get; } = accelerator;

    public int GroupSize => Math.Min(256, Accelerator.MaxNumThreadsPerGroup) / 32 * 32;

    public void Launch(MethodInfo kernel, long threads, params object[] args)
    {
        var k = kernels.GetOrAdd(kernel, m => Accelerator.LoadKernel(m));
        int groups = checked((int)Math.Max(1, (threads + GroupSize - 1) / GroupSize));
        k.Launch(Accelerator.DefaultStream, new KernelConfig(groups, GroupSize), args);
    }

    public void ZeroFirst(object view) => ((ArrayView<uint>)view).SubView(0, 1).MemSetToZero(Accelerator.DefaultStream);
}

/// <summary>
/// Compiles kernels to PTX with ILGPU's PTX backend (no device needed) and caches the text per kernel instantiation.
/// </summary>
public static class PtxCompiler
{
    static readonly Lock Gate = new();
    static Context? context;
    static readonly Dictionary<MethodInfo, string> Cache = new();

    /// <summary>The architecture the PTX targets; the driver JIT-compiles it for newer GPUs (sm_90 included).</summary>
    public static CudaArchitecture Architecture => CudaArchitecture.SM_80;

    /// <summary>PTX text of an explicitly grouped kernel.</summary>
    public static string Compile(MethodInfo kernel)
    {
        lock (Gate)
        {
            if (Cache.TryGetValue(kernel, out var ptx)) return ptx;
            context ??= Context.Create(b => b.CPU());
            var backend = new PTXBackend(context, Architecture, CudaInstructionSet.ISA_80, null!);
            var compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty);
            ptx = ((PTXCompiledKernel)compiled).PTXAssembly;
            backend.Dispose();
            Cache[kernel] = ptx;
            return ptx;
        }
    }

    /// <summary>The name of the first <c>.entry</c> in a PTX text.</summary>
    public static string EntryName(string ptx)
    {
        int at = ptx.IndexOf(".entry ", StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException("the PTX text has no .entry");
        int start = at + ".entry ".Length, end = ptx.IndexOf('(', start);
        return ptx[start..end].Trim();
    }
}

/// <summary>
/// Runs kernels in the device's primary CUDA context (the one torch uses) on the legacy default stream (torch's
/// default stream), through the driver API: so they are ordered with torch's work without any synchronisation.
/// </summary>
public sealed unsafe class CudaRunner : IKernelRunner
{
    static readonly ConcurrentDictionary<int, CudaRunner> Devices = new();

    readonly IntPtr context;
    readonly ConcurrentDictionary<MethodInfo, IntPtr> functions = new();

    /// <summary>The runner of CUDA device <paramref name="ordinal"/> (as torch numbers them).</summary>
    public static CudaRunner ForDevice(int ordinal) => Devices.GetOrAdd(ordinal, o => new CudaRunner(o));

    CudaRunner(int ordinal)
    {
        CudaDriver.Check(CudaDriver.cuInit(0), "cuInit");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        // Retained for the life of the process and never released: torch owns this context too.
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out context, device), "cuDevicePrimaryCtxRetain");
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int major, CudaDriver.AttrComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        if (major < 8) throw new NotSupportedException($"the GPU quantizers need compute capability 8.0 or newer, device {ordinal} has {major}.x");
    }

    /// <summary>The device's name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3").</summary>
    public static string DeviceName(int ordinal)
    {
        CudaDriver.Check(CudaDriver.cuInit(0), "cuInit");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        byte* name = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)name) ?? "";
    }

    /// <summary>The legacy default stream (handle 0): torch's default stream.</summary>
    public static IntPtr Stream => IntPtr.Zero;

    public int GroupSize => 256;

    public void Launch(MethodInfo kernel, long threads, params object[] args)
    {
        using var _ = new CurrentContext(context);
        var function = functions.GetOrAdd(kernel, Load);
        // One pointer per kernel parameter, each to a copy of the value laid out as the PTX .param expects.
        int size = 0;
        foreach (var a in args) size += 16;
        byte* values = stackalloc byte[size];
        IntPtr* pointers = stackalloc IntPtr[args.Length];
        for (int k = 0; k < args.Length; k++)
        {
            byte* slot = values + 16 * k;
            pointers[k] = (IntPtr)slot;
            switch (args[k])
            {
                case DeviceView v: *(IntPtr*)slot = v.Pointer; *(long*)(slot + 8) = v.Length; break;
                case int i: *(int*)slot = i; break;
                case uint u: *(uint*)slot = u; break;
                case long l: *(long*)slot = l; break;
                case ulong ul: *(ulong*)slot = ul; break;
                case float f: *(float*)slot = f; break;
                default: throw new ArgumentException($"unsupported kernel argument {args[k]?.GetType().Name}");
            }
        }
        long groups = Math.Max(1, (threads + GroupSize - 1) / GroupSize);
        if (groups > int.MaxValue) throw new ArgumentException($"{threads} threads is too large a launch");
        CudaDriver.Check(CudaDriver.cuLaunchKernel(function, (uint)groups, 1, 1, (uint)GroupSize, 1, 1, 0, Stream, (IntPtr)pointers, IntPtr.Zero),
            $"cuLaunchKernel({kernel.Name})");
    }

    public void ZeroFirst(object view)
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(CudaDriver.cuMemsetD32Async(((DeviceView)view).Pointer, 0, 1, Stream), "cuMemsetD32Async");
    }

    /// <summary>
    /// Device memory in use (total minus free, as the driver sees it: torch's cached blocks and other processes
    /// included), in bytes. What a trainer watches to see a run's footprint and catch growth from step to step.
    /// </summary>
    public long MemoryInUse()
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(CudaDriver.cuMemGetInfo(out nuint free, out nuint total), "cuMemGetInfo");
        return (long)(total - free);
    }

    /// <summary>Waits for the default stream (benchmarks and tests only; the quantizer itself never waits).</summary>
    public void Synchronize()
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(Stream), "cuStreamSynchronize");
    }

    IntPtr Load(MethodInfo kernel)
    {
        string ptx = PtxCompiler.Compile(kernel);
        byte[] image = Encoding.ASCII.GetBytes(ptx + "\0");
        fixed (byte* p = image)
        {
            CudaDriver.Check(CudaDriver.cuModuleLoadData(out IntPtr module, (IntPtr)p), $"cuModuleLoadData({kernel.Name})");
            CudaDriver.Check(CudaDriver.cuModuleGetFunction(out IntPtr function, module, PtxCompiler.EntryName(ptx)), "cuModuleGetFunction");
            return function;
        }
    }

    /// <summary>Makes the primary context current for a scope and restores the caller's afterwards.</summary>
    readonly struct CurrentContext : IDisposable
    {
        public CurrentContext(IntPtr context) => CudaDriver.Check(CudaDriver.cuCtxPushCurrent(context), "cuCtxPushCurrent");
        public void Dispose() => CudaDriver.cuCtxPopCurrent(out _);
    }
}
