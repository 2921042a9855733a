using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TetraJet.Distributed;

/// <summary>
/// How the ranks of a run get rank 0's NCCL unique id: rank 0 listens on MASTER_PORT (all interfaces) and every other
/// rank connects to MASTER_ADDR:MASTER_PORT, retrying until rank 0 is up. Each rank sends "TJRV", the protocol
/// version, WORLD_SIZE and its RANK (int32, little-endian); rank 0 checks them (same world size, a rank not seen yet)
/// and answers a status byte, then the id (0) or a UTF-8 message (1). Rank 0 serves exactly WORLD_SIZE − 1 ranks and
/// closes the port; the id travels once, before NCCL takes over. With WORLD_SIZE = 1 nothing listens.
/// </summary>
public static class Rendezvous
{
    static ReadOnlySpan<byte> Magic => "TJRV"u8;
    const int Version = 1;

    /// <summary>How long a rank waits for the others by default (rank 0 for all to connect, the others for rank 0).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Rank 0: creates the payload with <paramref name="create"/> and serves it; other ranks: fetch it. Returns the
    /// payload (<paramref name="length"/> bytes) on every rank.
    /// </summary>
    public static byte[] Exchange(DistributedEnvironment env, Func<byte[]> create, int length, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        if (env.IsRankZero)
        {
            var payload = create();
            if (payload.Length != length) throw new ArgumentException($"the payload is {payload.Length} bytes, expected {length}");
            if (env.WorldSize > 1) Serve(env.MasterPort, env.WorldSize, payload, limit);
            return payload;
        }
        return Fetch(env.MasterAddress, env.MasterPort, env.WorldSize, env.Rank, length, limit);
    }

    /// <summary>Rank 0's side: answers the other <paramref name="worldSize"/> − 1 ranks, then returns.</summary>
    public static void Serve(int port, int worldSize, byte[] payload, TimeSpan timeout)
    {
        TcpListener listener;
        try
        {
            // Every interface, IPv4 and IPv6 where the host has IPv6, else IPv4 alone.
            listener = TcpListener.Create(port);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start();
        }
        catch (SocketException e) { throw new InvalidOperationException($"rendezvous: rank 0 cannot listen on port {port} ({e.Message}); choose another MASTER_PORT", e); }
        var deadline = DateTime.UtcNow + timeout;
        var seen = new HashSet<int>();
        try
        {
            while (seen.Count < worldSize - 1)
            {
                var remaining = deadline - DateTime.UtcNow;
                var accept = listener.AcceptTcpClientAsync();
                if (remaining <= TimeSpan.Zero || !accept.Wait(remaining))
                    throw new TimeoutException($"rendezvous: rank 0 waited {timeout.TotalSeconds:0} s, and {worldSize - 1 - seen.Count} of {worldSize - 1} other ranks did not connect " +
                        $"(ranks seen: {(seen.Count == 0 ? "none" : string.Join(", ", seen.Order()))}); check MASTER_ADDR/MASTER_PORT and that every rank started");
                using var client = accept.Result;
                client.ReceiveTimeout = client.SendTimeout = 30_000;
                var stream = client.GetStream();
                string? error = null;
                int rank = -1;
                try
                {
                    var hello = ReadExactly(stream, 16);
                    if (!hello.AsSpan(0, 4).SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(4)) != Version)
                        continue;   // not one of ours (a port scanner, another program): ignore it
                    int theirWorld = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8));
                    rank = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(12));
                    if (theirWorld != worldSize) error = $"rank {rank} says WORLD_SIZE = {theirWorld}, rank 0 has {worldSize}";
                    else if (rank <= 0 || rank >= worldSize) error = $"RANK = {rank} is outside 1 … {worldSize - 1}";
                    else if (!seen.Add(rank)) error = $"two processes say RANK = {rank}";
                }
                catch (IOException) { continue; }
                if (error is null)
                {
                    stream.WriteByte(0);
                    stream.Write(payload);
                }
                else
                {
                    stream.WriteByte(1);
                    var text = Encoding.UTF8.GetBytes(error);
                    var n = new byte[4];
                    BinaryPrimitives.WriteInt32LittleEndian(n, text.Length);
                    stream.Write(n);
                    stream.Write(text);
                    throw new InvalidOperationException($"rendezvous: {error}");
                }
            }
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>Another rank's side: connects to rank 0 (retrying while it is not up yet) and reads the payload.</summary>
    public static byte[] Fetch(string address, int port, int worldSize, int rank, int length, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient { ReceiveTimeout = (int)Math.Max(1000, timeout.TotalMilliseconds), SendTimeout = 30_000 };
                var connect = client.ConnectAsync(address, port);
                if (!connect.Wait(TimeSpan.FromSeconds(5))) throw new TimeoutException("connect timed out");
                var stream = client.GetStream();
                var hello = new byte[16];
                Magic.CopyTo(hello);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), Version);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), worldSize);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(12), rank);
                stream.Write(hello);
                int status = stream.ReadByte();
                if (status == 0) return ReadExactly(stream, length);
                if (status == 1)
                {
                    int n = BinaryPrimitives.ReadInt32LittleEndian(ReadExactly(stream, 4));
                    throw new InvalidOperationException($"rendezvous: rank 0 refused rank {rank}: {Encoding.UTF8.GetString(ReadExactly(stream, Math.Clamp(n, 0, 4096)))}");
                }
                throw new IOException("rank 0 closed the connection");
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or AggregateException)
            {
                last = e;
                Thread.Sleep(200);
            }
        }
        throw new TimeoutException($"rendezvous: rank {rank} could not reach rank 0 at {address}:{port} within {timeout.TotalSeconds:0} s ({last?.GetBaseException().Message}); " +
            "check MASTER_ADDR/MASTER_PORT and that rank 0 started");
    }

    static byte[] ReadExactly(Stream stream, int count)
    {
        var buffer = new byte[count];
        stream.ReadExactly(buffer);
        return buffer;
    }
}
