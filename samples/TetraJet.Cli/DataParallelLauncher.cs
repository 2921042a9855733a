using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using TetraJet.Distributed;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// <c>tetrajet train … --gpus N</c>: starts N processes of this same command without <c>--gpus</c>, rank r on GPU r
/// (CUDA_VISIBLE_DEVICES names one GPU per process, taken from this process's own list when it has one), with RANK,
/// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR = 127.0.0.1 and MASTER_PORT (a free port unless MASTER_PORT is set) as torchrun
/// sets them. Rank 0 writes to this terminal directly; the others' error output comes through prefixed with their
/// rank. When a rank fails, the others are ended and the launcher exits with the failing rank's code.
/// </summary>
static partial class DataParallelLauncher
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>How long a signal to the launcher waits for rank 0 to stop on its own (the terminal signals the whole group) before passing it on.</summary>
    static readonly TimeSpan ForwardAfter = TimeSpan.FromSeconds(30);

    public static int Run(TrainOptions o, TextWriter stdout, TextWriter stderr, Interruption? interruption = null)
    {
        int gpus = o.Gpus ?? 1;
        if (gpus < 1) throw new UsageException($"--gpus {gpus}: use 1 or more");
        if (o.Device != "cuda") throw new UsageException("--gpus trains through NCCL on CUDA GPUs: add --device cuda");
        if (DistributedEnvironment.IsRank(Environment.GetEnvironmentVariable))
            throw new UsageException("--gpus inside a data-parallel rank (RANK and WORLD_SIZE are set): start ranks either with --gpus or with your own launcher, not both");
        var args = o.CommandLine ?? throw new InvalidOperationException("the launcher needs the command line (TrainOptions.CommandLine)");
        if (!cuda.is_available()) throw new UsageException("--gpus: TorchSharp sees no CUDA GPU (torch.cuda.is_available() is false)");
        var devices = DeviceList(Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"), (int)cuda.device_count(), gpus);
        int port = Environment.GetEnvironmentVariable(DistributedEnvironment.PortVariable) is { Length: > 0 } p
            ? int.Parse(p, CultureInfo.InvariantCulture) : FreePort();
        var (file, prefix) = SelfCommand(Environment.ProcessPath ?? "dotnet", Assembly.GetEntryAssembly()?.Location);
        var workerArgs = prefix.Concat(WorkerArgs(args)).ToList();
        stdout.WriteLine($"--gpus {gpus}: starting {gpus} rank(s) on GPU(s) {string.Join(",", devices)}, rendezvous at 127.0.0.1:{port}");
        stdout.Flush();

        var ranks = new List<Process>();
        try
        {
            for (int r = 0; r < gpus; r++)
            {
                var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = r != 0, RedirectStandardError = r != 0 };
                foreach (var a in workerArgs) info.ArgumentList.Add(a);
                foreach (var (k, v) in RankEnvironment(r, gpus, port, devices)) info.Environment[k] = v;
                var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start rank {r}");
                if (r != 0)
                {
                    int rr = r;
                    process.OutputDataReceived += (_, _) => { };
                    process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.WriteLine($"[rank {rr}] {e.Data}"); };
                    process.BeginOutputReadLine();
                    process.BeginErrorReadLine();
                }
                ranks.Add(process);
            }
            return Watch(ranks, stderr, interruption);
        }
        finally
        {
            foreach (var process in ranks)
            {
                try { if (!process.HasExited) process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                process.WaitForExit(10_000);
                process.Dispose();
            }
        }
    }

    /// <summary>
    /// Waits for the ranks. The first to fail ends the others and gives the exit code; once rank 0 has finished, the
    /// others have a minute to finish too (they stop at the same step) before they are ended.
    /// </summary>
    static int Watch(List<Process> ranks, TextWriter stderr, Interruption? interruption)
    {
        DateTime? rankZeroDone = null, interrupted = null;
        bool forwarded = false;
        while (true)
        {
            if (interruption?.Requested == true && !forwarded)
            {
                // Ctrl-C reaches every process of the group, and rank 0 stops by itself; a signal sent to the launcher
                // alone reaches rank 0 only from here, once, and late enough not to be a second signal (which ends it).
                interrupted ??= DateTime.UtcNow;
                if (DateTime.UtcNow - interrupted > ForwardAfter && !ranks[0].HasExited)
                {
                    Kill(ranks[0].Id, interruption.ExitCode - 128);
                    forwarded = true;
                }
            }
            for (int r = 0; r < ranks.Count; r++)
            {
                if (!ranks[r].HasExited) continue;
                int code = ranks[r].ExitCode;
                if (code != 0)
                {
                    if (r != 0 || ranks.Skip(1).Any(p => !p.HasExited))
                        lock (stderr) stderr.WriteLine($"error: rank {r} exited with code {code}; ending the other ranks");
                    return code;
                }
            }
            if (ranks.All(p => p.HasExited)) return 0;
            if (ranks[0].HasExited)
            {
                rankZeroDone ??= DateTime.UtcNow;
                if (DateTime.UtcNow - rankZeroDone > TimeSpan.FromMinutes(1))
                {
                    lock (stderr) stderr.WriteLine("error: rank 0 finished but other ranks did not within a minute; ending them");
                    return 2;
                }
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>The command line without <c>--gpus N</c> (or <c>--gpus=N</c>, <c>--gpus:N</c>).</summary>
    public static List<string> WorkerArgs(IReadOnlyList<string> args)
    {
        var list = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--gpus") { i++; continue; }
            if (args[i].StartsWith("--gpus=", StringComparison.Ordinal) || args[i].StartsWith("--gpus:", StringComparison.Ordinal)) continue;
            list.Add(args[i]);
        }
        return list;
    }

    /// <summary>
    /// How to start this program again: the apphost itself, or <c>dotnet</c> with the entry assembly when the process
    /// is the dotnet host (<c>dotnet TetraJet.Cli.dll …</c>, or the installed tool's shim).
    /// </summary>
    public static (string File, IReadOnlyList<string> Prefix) SelfCommand(string processPath, string? entryAssembly)
    {
        var name = Path.GetFileNameWithoutExtension(processPath);
        if (name == "dotnet")
        {
            if (string.IsNullOrEmpty(entryAssembly)) throw new InvalidOperationException("cannot tell which assembly to start under dotnet");
            return (processPath, [entryAssembly]);
        }
        return (processPath, []);
    }

    /// <summary>
    /// The GPUs of ranks 0 … N − 1: the entries of CUDA_VISIBLE_DEVICES when it is set, else 0 … N − 1 of the
    /// <paramref name="available"/> devices torch sees.
    /// </summary>
    public static IReadOnlyList<string> DeviceList(string? visible, int available, int gpus)
    {
        var list = visible is null
            ? Enumerable.Range(0, available).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList()
            : visible.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (list.Count < gpus)
            throw new UsageException($"--gpus {gpus}: only {list.Count} GPU(s) visible" + (visible is null ? "" : $" (CUDA_VISIBLE_DEVICES={visible})"));
        return list.Take(gpus).ToList();
    }

    /// <summary>Rank <paramref name="rank"/>'s variables: torchrun's five and its one GPU.</summary>
    public static Dictionary<string, string> RankEnvironment(int rank, int gpus, int port, IReadOnlyList<string> devices)
    {
        var env = DistributedEnvironment.ForLocalRank(rank, gpus, port);
        env["CUDA_VISIBLE_DEVICES"] = devices[rank];
        return env;
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
