using System.Net;
using System.Net.Sockets;
using TetraJet.Distributed;

namespace TetraJet.Runtime.Tests.Distributed;

public class EnvironmentAndRendezvousTests
{
    static Func<string, string?> Env(params (string, string)[] vars)
    {
        var d = vars.ToDictionary(v => v.Item1, v => v.Item2);
        return k => d.TryGetValue(k, out var v) ? v : null;
    }

    [Fact]
    public void Parses_torchruns_variables()
    {
        var env = DistributedEnvironment.Parse(Env(("RANK", "3"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "node0"), ("MASTER_PORT", "29500")));
        Assert.Equal((3, 8, 1, "node0", 29500, 1), (env.Rank, env.WorldSize, env.LocalRank, env.MasterAddress, env.MasterPort, env.DeviceIndex));
        // One GPU visible (the launcher's way): it is device 0 whatever LOCAL_RANK says.
        var one = DistributedEnvironment.Parse(Env(("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "1234"), ("CUDA_VISIBLE_DEVICES", "5")));
        Assert.Equal(0, one.DeviceIndex);
        // LOCAL_RANK defaults to RANK; a world of one needs no address or port.
        var solo = DistributedEnvironment.Parse(Env(("RANK", "0"), ("WORLD_SIZE", "1")));
        Assert.Equal((0, 1, 0, "127.0.0.1", 0), (solo.Rank, solo.WorldSize, solo.LocalRank, solo.MasterAddress, solo.MasterPort));
        Assert.True(DistributedEnvironment.IsRank(Env(("RANK", "0"), ("WORLD_SIZE", "1"))));
        Assert.False(DistributedEnvironment.IsRank(Env(("RANK", "0"))));
        var local = DistributedEnvironment.ForLocalRank(2, 4, 4444);
        Assert.Equal(DistributedEnvironment.Parse(local) with { }, DistributedEnvironment.Parse(k => local.GetValueOrDefault(k)));
        Assert.Equal((2, 4, 2, 4444), (DistributedEnvironment.Parse(local).Rank, DistributedEnvironment.Parse(local).WorldSize,
            DistributedEnvironment.Parse(local).LocalRank, DistributedEnvironment.Parse(local).MasterPort));
    }

    [Theory]
    [InlineData("WORLD_SIZE is not set", "RANK", "0")]
    [InlineData("RANK = 2 is outside 0 … 1", "RANK", "2", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1")]
    [InlineData("WORLD_SIZE = 'two' is not a whole number", "RANK", "0", "WORLD_SIZE", "two")]
    [InlineData("WORLD_SIZE = 0 is outside", "RANK", "0", "WORLD_SIZE", "0")]
    [InlineData("MASTER_ADDR is not set", "RANK", "1", "WORLD_SIZE", "2", "MASTER_PORT", "29500")]
    [InlineData("MASTER_PORT is not set", "RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "h")]
    [InlineData("MASTER_PORT = 70000 is outside", "RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000")]
    [InlineData("RANK = '-1' is not a whole number", "RANK", "-1", "WORLD_SIZE", "2")]
    public void Bad_variables_are_named(string message, params string[] pairs)
    {
        var vars = Enumerable.Range(0, pairs.Length / 2).Select(i => (pairs[2 * i], pairs[2 * i + 1])).ToArray();
        var e = Assert.Throws<ArgumentException>(() => DistributedEnvironment.Parse(Env(vars)));
        Assert.Contains(message, e.Message);
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public void Rank_zero_serves_its_id_to_every_other_rank_over_tcp()
    {
        int port = FreePort();
        var id = Enumerable.Range(0, NcclUniqueId.Bytes).Select(i => (byte)(i * 7 + 1)).ToArray();
        int created = 0;
        var results = new byte[4][];
        // The others start first and retry until rank 0 listens.
        var threads = Enumerable.Range(0, 4).Reverse().Select(r => new Thread(() =>
        {
            var env = DistributedEnvironment.Parse(DistributedEnvironment.ForLocalRank(r, 4, port));
            results[r] = Rendezvous.Exchange(env, () => { Interlocked.Increment(ref created); return id; }, NcclUniqueId.Bytes, TimeSpan.FromSeconds(30));
        })).ToList();
        foreach (var t in threads) { t.Start(); Thread.Sleep(50); }
        threads.ForEach(t => t.Join());
        Assert.Equal(1, created);
        Assert.All(results, r => Assert.Equal(id, r));
        Assert.Equal(id, NcclUniqueId.FromArray(id).ToArray());
    }

    [Fact]
    public void A_rank_with_another_world_size_is_refused_with_the_reason()
    {
        int port = FreePort();
        Exception? served = null;
        var server = new Thread(() => served = Record.Exception(() => Rendezvous.Serve(port, 2, new byte[8], TimeSpan.FromSeconds(30))));
        server.Start();
        var e = Assert.Throws<InvalidOperationException>(() => Rendezvous.Fetch("127.0.0.1", port, 3, 1, 8, TimeSpan.FromSeconds(30)));
        server.Join();
        Assert.Contains("rank 1 says WORLD_SIZE = 3, rank 0 has 2", e.Message);
        Assert.Contains("WORLD_SIZE = 3", served!.Message);
    }

    [Fact]
    public void A_rank_without_rank_zero_times_out_naming_the_address()
    {
        int port = FreePort();
        var e = Assert.Throws<TimeoutException>(() => Rendezvous.Fetch("127.0.0.1", port, 2, 1, 8, TimeSpan.FromSeconds(1)));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public void Nccl_is_looked_for_in_the_documented_places()
    {
        var c = NcclLibrary.Candidates("/opt/nccl/libnccl.so.2",
            ["/usr/lib/libc.so.6", "/site/torch/lib/libtorch_cuda.so", "/site/nvidia/nccl/lib/libnccl.so.2"], "/a/lib:/b");
        Assert.Equal(new[]
        {
            "/opt/nccl/libnccl.so.2", "/site/nvidia/nccl/lib/libnccl.so.2", "libnccl.so.2", "/site/torch/lib/libnccl.so.2",
            "/a/lib/libnccl.so.2", "/nvidia/nccl/lib/libnccl.so.2", "/b/libnccl.so.2",
        }, c);
    }
}
