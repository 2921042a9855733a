using System.Text;

namespace TetraJet.Cli;

/// <summary>
/// TensorBoard event file writer: each record is length (u64) · masked CRC32C of the length · an Event protobuf ·
/// masked CRC32C of the event. Only scalars are written, so the protobuf is encoded by hand (no dependency).
/// </summary>
/// <remarks>
/// Not TorchSharp's <c>torch.utils.tensorboard.SummaryWriter</c> (0.107): it stamps events with wall time 0 unless
/// given one, takes wall time as a float (1.7e9 s in a float is 128 s coarse) and steps as int, and opens, seeks
/// and closes the file for every scalar. Here wall time is a double of Unix seconds, steps are 64-bit, and one
/// stream stays open for the run.
/// </remarks>
public sealed class TfEventsWriter : IDisposable
{
    readonly FileStream file;

    public string Path { get; }

    public TfEventsWriter(string folder)
    {
        // A resumed run adds a file; TensorBoard reads all files of a folder. Same-second resumes get a suffix.
        var stem = System.IO.Path.Combine(folder, $"events.out.tfevents.{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}");
        Path = stem;
        for (int n = 1; File.Exists(Path); n++) Path = $"{stem}.{n}";
        file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write);
        var ev = new List<byte>();
        Double(ev, 1, Now());
        LengthDelimited(ev, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        WriteRecord([.. ev]);
    }

    static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    public void Scalar(string tag, double value, long step)
    {
        var v = new List<byte>();
        LengthDelimited(v, 1, Encoding.UTF8.GetBytes(tag));
        v.Add(2 << 3 | 5); v.AddRange(BitConverter.GetBytes((float)value));   // simple_value: fixed32 float
        var summary = new List<byte>();
        LengthDelimited(summary, 1, [.. v]);
        var ev = new List<byte>();
        Double(ev, 1, Now());
        ev.Add(2 << 3 | 0); Varint(ev, (ulong)step);
        LengthDelimited(ev, 5, [.. summary]);
        WriteRecord([.. ev]);
    }

    public void Flush() => file.Flush();

    void WriteRecord(byte[] data)
    {
        var len = BitConverter.GetBytes((ulong)data.Length);
        file.Write(len);
        file.Write(BitConverter.GetBytes(Crc32C.Masked(len)));
        file.Write(data);
        file.Write(BitConverter.GetBytes(Crc32C.Masked(data)));
    }

    static void Varint(List<byte> o, ulong v)
    {
        while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
        o.Add((byte)v);
    }

    static void Double(List<byte> o, int field, double v) { o.Add((byte)(field << 3 | 1)); o.AddRange(BitConverter.GetBytes(v)); }

    static void LengthDelimited(List<byte> o, int field, byte[] payload)
    {
        o.Add((byte)(field << 3 | 2));
        Varint(o, (ulong)payload.Length);
        o.AddRange(payload);
    }

    public void Dispose() => file.Dispose();
}

/// <summary>CRC-32C (Castagnoli), with TensorFlow's mask.</summary>
public static class Crc32C
{
    static readonly uint[] Table = Build();

    static uint[] Build()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    public static uint Masked(ReadOnlySpan<byte> data)
    {
        uint c = Compute(data);
        return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
    }
}
