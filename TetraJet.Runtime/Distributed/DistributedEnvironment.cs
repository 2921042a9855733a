using System.Collections;
using System.Globalization;

namespace TetraJet.Distributed;

/// <summary>
/// One rank's place in a data-parallel run, from the variables torchrun sets: RANK (0 … WORLD_SIZE − 1), WORLD_SIZE,
/// LOCAL_RANK (the rank's GPU on its host), MASTER_ADDR and MASTER_PORT (where rank 0 serves the NCCL unique id).
/// <c>tetrajet train --gpus N</c> sets them for the processes it starts; on several hosts the user's own launcher does.
/// </summary>
public sealed record DistributedEnvironment
{
    public const string RankVariable = "RANK", WorldSizeVariable = "WORLD_SIZE", LocalRankVariable = "LOCAL_RANK",
        AddressVariable = "MASTER_ADDR", PortVariable = "MASTER_PORT";

    public required int Rank { get; init; }
    public required int WorldSize { get; init; }
    public required int LocalRank { get; init; }
    public required string MasterAddress { get; init; }
    public required int MasterPort { get; init; }
    /// <summary>The CUDA device (torch's numbering in this process): 0 when CUDA_VISIBLE_DEVICES names one GPU, else LOCAL_RANK.</summary>
    public required int DeviceIndex { get; init; }

    public bool IsRankZero => Rank == 0;

    /// <summary>Whether this process was started as a rank: RANK and WORLD_SIZE are both set.</summary>
    public static bool IsRank(Func<string, string?> get) => get(RankVariable) is not null && get(WorldSizeVariable) is not null;

    /// <summary>The environment of this process; null when it is not a rank.</summary>
    public static DistributedEnvironment? FromProcess() =>
        IsRank(Environment.GetEnvironmentVariable) ? Parse(Environment.GetEnvironmentVariable) : null;

    /// <summary>Reads and checks the variables; every problem is an <see cref="ArgumentException"/> that names the variable.</summary>
    public static DistributedEnvironment Parse(Func<string, string?> get)
    {
        int worldSize = Int(get, WorldSizeVariable, null, 1, 65536);
        int rank = Int(get, RankVariable, null, 0, worldSize - 1);
        int localRank = Int(get, LocalRankVariable, rank, 0, 1023);
        int port = Int(get, PortVariable, worldSize == 1 ? 0 : null, 0, 65535);
        if (port == 0 && worldSize > 1) throw new ArgumentException($"{PortVariable} = 0: ranks need a fixed port to meet at; use e.g. 29500");
        string address = get(AddressVariable) is { Length: > 0 } a ? a.Trim() : worldSize == 1 ? "127.0.0.1"
            : throw new ArgumentException($"{AddressVariable} is not set: the other ranks need rank 0's host name or address");
        var visible = get("CUDA_VISIBLE_DEVICES");
        bool oneVisible = visible is not null && visible.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Length == 1;
        return new DistributedEnvironment
        {
            Rank = rank, WorldSize = worldSize, LocalRank = localRank, MasterAddress = address, MasterPort = port,
            DeviceIndex = oneVisible ? 0 : localRank,
        };
    }

    /// <summary>Parses from a dictionary (tests, and launchers that build an environment).</summary>
    public static DistributedEnvironment Parse(IDictionary variables) => Parse(k => variables.Contains(k) ? variables[k]?.ToString() : null);

    static int Int(Func<string, string?> get, string name, int? fallback, int min, int max)
    {
        var text = get(name);
        if (string.IsNullOrWhiteSpace(text))
            return fallback ?? throw new ArgumentException($"{name} is not set; a data-parallel rank needs {RankVariable}, {WorldSizeVariable}, {AddressVariable} and {PortVariable} (as torchrun sets them)");
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v))
            throw new ArgumentException($"{name} = '{text}' is not a whole number");
        if (v < min || v > max) throw new ArgumentException($"{name} = {v} is outside {min} … {max}");
        return v;
    }

    /// <summary>The variables that make a process rank <paramref name="rank"/> of a one-host run of <paramref name="worldSize"/> (one GPU each).</summary>
    public static Dictionary<string, string> ForLocalRank(int rank, int worldSize, int port) => new()
    {
        [RankVariable] = rank.ToString(CultureInfo.InvariantCulture),
        [WorldSizeVariable] = worldSize.ToString(CultureInfo.InvariantCulture),
        [LocalRankVariable] = rank.ToString(CultureInfo.InvariantCulture),
        [AddressVariable] = "127.0.0.1",
        [PortVariable] = port.ToString(CultureInfo.InvariantCulture),
    };
}
