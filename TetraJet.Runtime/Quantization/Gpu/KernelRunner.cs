using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Gpu;

/// <summary>A device pointer and its element count: the layout ILGPU's PTX kernels take a view in ({ptr, length}, 16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct DeviceView(IntPtr Pointer, long Length)
{
    /// <summary>An empty view, for kernel parameters a configuration does not read.</summary>
    public static DeviceView None => default;
}

/// <summary>
/// Runs kernels on an ILGPU accelerator (the CPU accelerator in tests and checks): the same kernel methods the CUDA
/// launcher runs, with ILGPU's own views. Arguments are boxed here; this path is for tests, not for training.
/// </summary>
public sealed class IlgpuRunner(Accelerator accelerator)
{
    readonly ConcurrentDictionary<MethodInfo, Kernel> kernels = new();

    public Accelerator Accelerator { get; } = accelerator;

    /// <summary>Threads per group: <see cref="KernelGeometry.GroupSize"/>, as on CUDA (a tile kernel's group is one tile).</summary>
    public int GroupSize => KernelGeometry.GroupSize;

    /// <summary>
    /// Runs <paramref name="kernel"/> over ⌈<paramref name="threads"/> / GroupSize⌉ groups (threads from
    /// <see cref="KernelGeometry"/>). A seed (ulong) given for a <see cref="PhiloxKey"/> parameter becomes its key
    /// schedule, as the implicit conversion does for typed callers (boxed arguments are not converted by ILGPU).
    /// </summary>
    public void Launch(MethodInfo kernel, long threads, params object[] args)
    {
        if (Accelerator.MaxNumThreadsPerGroup < GroupSize || Accelerator.WarpSize != 32)
            throw new NotSupportedException($"the kernels need groups of {GroupSize} threads in warps of 32; {Accelerator.Name} gives {Accelerator.MaxNumThreadsPerGroup} in warps of {Accelerator.WarpSize}");
        var parameters = kernel.GetParameters();
        for (int i = 0; i < args.Length && i < parameters.Length; i++)
            if (args[i] is ulong seed && parameters[i].ParameterType == typeof(PhiloxKey)) args[i] = new PhiloxKey(seed);
        var k = kernels.GetOrAdd(kernel, m => Accelerator.LoadKernel(m));
        int groups = checked((int)Math.Max(1, (threads + GroupSize - 1) / GroupSize));
        k.Launch(Accelerator.DefaultStream, new KernelConfig(groups, GroupSize), args);
    }
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
            // O2: ILGPU's full optimisation pipeline (no fast math: IEEE division is part of the numerics contract).
            context ??= Context.Create(b => b.CPU().Optimize(OptimizationLevel.O2));
            var backend = new PTXBackend(context, Architecture, CudaInstructionSet.ISA_80, null!);
            var compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty);
            ptx = Retarget(Rename(((PTXCompiledKernel)compiled).PTXAssembly, kernel));
            backend.Dispose();
            Cache[kernel] = ptx;
            return ptx;
        }
    }

    /// <summary>The target of kernels that convert to FP8 in one instruction (<see cref="Fp8Operand.Pack4"/>): they run only where FP8 GEMMs do.</summary>
    public const string Fp8Target = "sm_90";

    /// <summary>
    /// PTX with <c>cvt…e4m3x2</c> needs an sm_90 target (ptxas 11.8; later PTX versions allow sm_89, whose FP8 GEMMs lack the 1×128 scaling used here); every other kernel keeps <see cref="Architecture"/>, so the
    /// library still loads on sm_80. A device below the target refuses such a module at load (<see cref="CudaRunner"/>).
    /// </summary>
    static string Retarget(string ptx) =>
        ptx.Contains(".e4m3x2.", StringComparison.Ordinal) ? Regex.Replace(ptx, @"^\.target sm_\d+", ".target " + Fp8Target, RegexOptions.Multiline) : ptx;

    /// <summary>
    /// ILGPU names every entry after the method alone (<c>Kernel_Mx</c> for each of its instantiations); a profiler then
    /// cannot tell a row kernel from a column kernel. The entry and its parameters are renamed after the declaring type,
    /// the method and the type arguments (<c>RowKernels_Mx__Bf16Io_Bf16_MxTetraJet_Stochastic_NoHadamard_NoStore</c>).
    /// </summary>
    static string Rename(string ptx, MethodInfo kernel)
    {
        string old = EntryName(ptx);
        var parts = new[] { kernel.DeclaringType?.Name ?? "", kernel.Name, "" }.Concat(kernel.GetGenericArguments().Select(t => t.Name));
        string name = Regex.Replace(string.Join("_", parts), "[^A-Za-z0-9_]", "");
        return Regex.Replace(ptx, $@"\b{Regex.Escape(old)}(?=_param|\b)", name);
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
/// default stream), through the driver API: so they are ordered with torch's work without any synchronisation. Work
/// that reads only what is already on the device can go to a side stream beside it (<see cref="Aside{T}"/>).
/// </summary>
public sealed unsafe class CudaRunner
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
        capability = ComputeCapability(ordinal);
        if (capability < 80) throw new NotSupportedException($"the GPU quantizers need compute capability 8.0 or newer, device {ordinal} has {capability / 10}.{capability % 10}");
        this.ordinal = ordinal;
    }

    readonly int ordinal, capability;

    /// <summary>Compute capability of CUDA device <paramref name="ordinal"/> as major × 10 + minor (9.0 → 90).</summary>
    public static int ComputeCapability(int ordinal)
    {
        CudaDriver.Check(CudaDriver.cuInit(0), "cuInit");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int major, CudaDriver.AttrComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int minor, CudaDriver.AttrComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        return major * 10 + minor;
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

    /// <summary>Where this thread's launches and memsets go: torch's default stream, or the side stream inside <see cref="Aside{T}"/>.</summary>
    [ThreadStatic] static IntPtr launchStream;

    // The side stream (created on first use) and its events: the fork event, recorded on the default stream before each
    // side launch, and a pool of events that mark the end of side work until the default stream has waited on them.
    IntPtr side, fork;
    readonly ConcurrentBag<IntPtr> idleEvents = new();
    readonly object sideLock = new();

    /// <summary>
    /// Runs <paramref name="work"/> with this thread's launches queued on the device's side stream, a non-blocking
    /// stream beside torch's default one; returns its result and an event recorded after it. Each side launch first
    /// waits for everything the default stream was given before it, so the work may read any tensor torch has written;
    /// the default stream waits for the event (<see cref="WaitFor"/>) before anything reads the result, and so before
    /// the memory the work read or wrote can be freed and reused. The work must do nothing on torch's stream but
    /// allocate: a torch operation inside it would run on the default stream, unordered with the side launches.
    /// </summary>
    public (T Result, IntPtr Done) Aside<T>(Func<T> work)
    {
        if (launchStream != IntPtr.Zero) throw new InvalidOperationException("side work does not nest");
        if (Volatile.Read(ref side) == IntPtr.Zero) CreateSide();
        T result;
        launchStream = side;
        try { result = work(); }
        catch
        {
            // What the work launched before it threw must still finish before torch frees what it reads.
            WaitFor(SideDone());
            throw;
        }
        finally { launchStream = IntPtr.Zero; }
        return (result, SideDone());
    }

    void CreateSide()
    {
        using var _ = new CurrentContext(context);
        lock (sideLock)
        {
            if (side != IntPtr.Zero) return;
            CudaDriver.Check(CudaDriver.cuEventCreate(out fork, CudaDriver.EventDisableTiming), "cuEventCreate");
            CudaDriver.Check(CudaDriver.cuStreamCreate(out var stream, CudaDriver.StreamNonBlocking), "cuStreamCreate");
            Volatile.Write(ref side, stream);
        }
    }

    /// <summary>An event recorded on the side stream after the work queued there so far.</summary>
    IntPtr SideDone()
    {
        using var _ = new CurrentContext(context);
        if (!idleEvents.TryTake(out var done))
            CudaDriver.Check(CudaDriver.cuEventCreate(out done, CudaDriver.EventDisableTiming), "cuEventCreate");
        CudaDriver.Check(CudaDriver.cuEventRecord(done, side), "cuEventRecord");
        return done;
    }

    /// <summary>Makes torch's default stream wait for side work's <paramref name="done"/> event, then returns the event to the pool.</summary>
    public void WaitFor(IntPtr done)
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(CudaDriver.cuStreamWaitEvent(Stream, done, 0), "cuStreamWaitEvent");
        // A wait holds the event's state at the call, so the event can be recorded again from here on.
        idleEvents.Add(done);
    }

    /// <summary>The stream of this thread's next launch; a side launch first waits for the default stream's work so far.</summary>
    IntPtr LaunchStream()
    {
        var stream = launchStream;
        if (stream == IntPtr.Zero) return stream;
        lock (sideLock)
        {
            CudaDriver.Check(CudaDriver.cuEventRecord(fork, Stream), "cuEventRecord");
            CudaDriver.Check(CudaDriver.cuStreamWaitEvent(stream, fork, 0), "cuStreamWaitEvent");
        }
        return stream;
    }

    /// <summary>Threads per group: <see cref="KernelGeometry.GroupSize"/> (a tile kernel's group is one tile).</summary>
    public int GroupSize => KernelGeometry.GroupSize;

    /// <summary>Queues <paramref name="kernel"/> over a 1-D grid of at least <paramref name="threads"/> threads (from <see cref="KernelGeometry"/>) on torch's default stream (or the side stream inside <see cref="Aside{T}"/>).</summary>
    public void Launch(MethodInfo kernel, long threads, ReadOnlySpan<KernelArg> args)
    {
        using var _ = new CurrentContext(context);
        var function = functions.GetOrAdd(kernel, Load);
        long groups = Math.Max(1, (threads + GroupSize - 1) / GroupSize);
        if (groups > int.MaxValue) throw new ArgumentException($"{threads} threads is too large a launch");
        // cuLaunchKernel takes one pointer per parameter, to a value laid out as the PTX .param expects.
        IntPtr* pointers = stackalloc IntPtr[args.Length];
        fixed (KernelArg* values = args)
        {
            for (int k = 0; k < args.Length; k++) pointers[k] = (IntPtr)(values + k);
            int result = CudaDriver.cuLaunchKernel(function, (uint)groups, 1, 1, (uint)GroupSize, 1, 1, 0, LaunchStream(), (IntPtr)pointers, IntPtr.Zero);
            // The message is built only on failure: a launch is on every layer's hot path.
            if (result != 0) CudaDriver.Check(result, $"cuLaunchKernel({kernel.Name})");
        }
    }

    /// <summary>Sets the first <paramref name="count"/> uints of <paramref name="view"/> to 0, ordered with the launches.</summary>
    public void Zero(DeviceView view, long count)
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(CudaDriver.cuMemsetD32Async(view.Pointer, 0, (nuint)count, LaunchStream()), "cuMemsetD32Async");
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

    /// <summary>
    /// Opens or closes a profiler range (cuProfilerStart/Stop): a profiler started with collection off records only the
    /// kernels inside (the benchmark's per-kernel profile). Without a profiler attached it does nothing.
    /// </summary>
    public void ProfilerRange(bool start)
    {
        using var _ = new CurrentContext(context);
        CudaDriver.Check(start ? CudaDriver.cuProfilerStart() : CudaDriver.cuProfilerStop(), start ? "cuProfilerStart" : "cuProfilerStop");
    }

    IntPtr Load(MethodInfo kernel)
    {
        string ptx = PtxCompiler.Compile(kernel);
        if (ptx.Contains(".target " + PtxCompiler.Fp8Target, StringComparison.Ordinal) && capability < 90)
            throw new NotSupportedException($"{kernel.DeclaringType?.Name}.{kernel.Name} writes FP8 operands and needs compute capability 9.0 or newer (device {ordinal}: {capability / 10}.{capability % 10}); MXFP4 layers there use BF16 GEMMs");
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
