using System.Runtime.InteropServices;

namespace TetraJet.Distributed;

/// <summary>
/// Finds and loads <c>libnccl.so.2</c>. In order: the path in <see cref="PathVariable"/>; a copy already mapped into
/// the process (libtorch_cuda loads NCCL itself, so that copy is the one torch uses); the plain soname (the loader's
/// own search: LD_LIBRARY_PATH, the ld.so cache, the default directories); then beside each loaded libtorch and each
/// LD_LIBRARY_PATH directory, and in the <c>nvidia/nccl/lib</c> folder a pip-installed PyTorch keeps two levels up
/// from its <c>torch/lib</c>.
/// </summary>
public static class NcclLibrary
{
    /// <summary>Environment variable naming libnccl.so.2 explicitly.</summary>
    public const string PathVariable = "TETRAJET_NCCL";

    const string SoName = "libnccl.so.2";

    /// <summary>The places tried, in order, without touching the file system.</summary>
    public static IReadOnlyList<string> Candidates(string? explicitPath, IEnumerable<string> mappedLibraries, string? ldLibraryPath)
    {
        var list = new List<string>();
        void Add(string p) { if (!list.Contains(p)) list.Add(p); }
        if (!string.IsNullOrWhiteSpace(explicitPath)) Add(explicitPath);
        var mapped = mappedLibraries.ToList();
        foreach (var m in mapped) if (Path.GetFileName(m).StartsWith("libnccl.so", StringComparison.Ordinal)) Add(m);
        Add(SoName);
        var dirs = mapped.Where(m => Path.GetFileName(m).StartsWith("libtorch", StringComparison.Ordinal)).Select(m => Path.GetDirectoryName(m)!)
            .Concat((ldLibraryPath ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        foreach (var d in dirs)
        {
            Add(Path.Combine(d, SoName));
            Add(Path.GetFullPath(Path.Combine(d, "..", "..", "nvidia", "nccl", "lib", SoName)));
        }
        return list;
    }

    /// <summary>Shared libraries mapped into this process (Linux /proc/self/maps; empty elsewhere).</summary>
    public static IEnumerable<string> MappedLibraries()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return [];
        return File.ReadLines(maps).Select(l => l.IndexOf('/') is var i and >= 0 ? l[i..].Trim() : "")
            .Where(p => p.Contains(".so", StringComparison.Ordinal)).Distinct().ToList();
    }

    /// <summary>Loads NCCL or throws <see cref="DllNotFoundException"/> naming every place tried.</summary>
    public static IntPtr Load()
    {
        var candidates = Candidates(Environment.GetEnvironmentVariable(PathVariable), MappedLibraries(), Environment.GetEnvironmentVariable("LD_LIBRARY_PATH"));
        foreach (var c in candidates)
            if ((c == SoName || File.Exists(c)) && NativeLibrary.TryLoad(c, out var handle)) return handle;
        throw new DllNotFoundException($"NCCL ({SoName}) was not found; tried {string.Join(", ", candidates)}. Data-parallel training needs the NCCL " +
            $"of a CUDA PyTorch (pip's nvidia-nccl package) or of the CUDA toolkit: put its folder on LD_LIBRARY_PATH or set {PathVariable} to the file");
    }
}
