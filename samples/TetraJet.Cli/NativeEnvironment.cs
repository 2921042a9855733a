using System.Runtime.InteropServices;

namespace TetraJet.Cli;

/// <summary>Settings that libtorch's OpenMP runtime reads once, when it loads.</summary>
public static partial class NativeEnvironment
{
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Makes idle OpenMP threads sleep instead of spin (unless the user chose otherwise). On a CPU shared with
    /// other work, spinning threads cut tiny-cpu ViT throughput about fivefold (75 → 367 images/s measured on
    /// two busy cores). Call before the first TorchSharp call; .NET's own environment API does not reach native
    /// getenv on Linux, hence setenv.
    /// </summary>
    public static void PreferPassiveOpenMpWait()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        try { SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }
}
