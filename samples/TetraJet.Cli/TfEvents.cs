using System.Text;

namespace TetraJet.Cli;

/// <summary>
/// TensorBoard event file writer: each record is length (u64) · masked CRC32C of the length · an Event protobuf ·
/// masked CRC32C of the event. Only scalars are written, so the protobuf is encoded by hand (no dependency); this
/// also lets a resumed run cut the stream back to its checkpoint, which TorchSharp's SummaryWriter cannot.
/// </summary>
/// <remarks>
/// Not TorchSharp's <c>torch.utils.tensorboard.SummaryWriter</c> (0.107): it stamps events with wall time 0 unless
/// given one, takes wall time as a float (1.7e9 s in a float is 128 s coarse) and steps as int, and opens, seeks
/// and closes the file for every scalar. Here wall time is a double of Unix seconds, steps are 64-bit, and one
/// stream stays open for the run.
/// </remarks>
public sealed class TfEventsWriter : IDisposable
{
    public const string Prefix = "events.out.tfevents.";
    readonly FileStream file;

    public string Path { get; }

    TfEventsWriter(string path, FileStream file)
    {
        Path = path;
        this.file = file;
    }

    /// <summary>A new event file in <paramref name="folder"/> for a run that starts at step 0.</summary>
    public static TfEventsWriter Create(string folder)
    {
        var stem = System.IO.Path.Combine(folder, $"{Prefix}{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}");
        var path = stem;
        for (int n = 1; File.Exists(path); n++) path = $"{stem}.{n}";
        var writer = new TfEventsWriter(path, new FileStream(path, FileMode.CreateNew, FileAccess.Write));
        writer.WriteRecord(FileVersionEvent());
        return writer;
    }

    /// <summary>
    /// Continues the event stream of a run resumed at <paramref name="step"/>: the folder's event files become one,
    /// holding each (tag, step) once up to the checkpoint, without the records written after it (which the resumed
    /// run writes again) or a record cut off by a kill; new records are appended to it.
    /// </summary>
    public static TfEventsWriter Continue(string folder, long step)
    {
        var files = Directory.GetFiles(folder, Prefix + "*").Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) return Create(folder);
        var kept = new List<byte[]> { FileVersionEvent() };
        var index = new Dictionary<(string Tag, long Step), int>();
        foreach (var f in files)
            foreach (var ev in ReadEvents(File.ReadAllBytes(f)))
            {
                if (EventInfo(ev) is not (string tag, long s) || s > step) continue;
                if (index.TryGetValue((tag, s), out int at)) kept[at] = ev;   // a duplicate from an earlier resume: the later one wins
                else { index[(tag, s)] = kept.Count; kept.Add(ev); }
            }
        var path = files[0];
        var tmp = path + ".tmp";
        using (var w = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            foreach (var ev in kept) WriteRecord(w, ev);
            w.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        foreach (var f in files.Skip(1)) File.Delete(f);
        return new TfEventsWriter(path, new FileStream(path, FileMode.Append, FileAccess.Write));
    }

    static byte[] FileVersionEvent()
    {
        var ev = new List<byte>();
        Double(ev, 1, Now());
        LengthDelimited(ev, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        return [.. ev];
    }

    /// <summary>The Event payloads of a file, up to the first record that is incomplete or fails its checksums.</summary>
    static List<byte[]> ReadEvents(byte[] data)
    {
        var events = new List<byte[]>();
        int pos = 0;
        while (pos + 16 <= data.Length)
        {
            var lenBytes = data.AsSpan(pos, 8);
            ulong len = BitConverter.ToUInt64(lenBytes);
            if (BitConverter.ToUInt32(data, pos + 8) != Crc32C.Masked(lenBytes) || len > (ulong)(data.Length - pos - 16)) break;
            var payload = data.AsSpan(pos + 12, (int)len);
            if (BitConverter.ToUInt32(data, pos + 12 + (int)len) != Crc32C.Masked(payload)) break;
            events.Add(payload.ToArray());
            pos += 16 + (int)len;
        }
        return events;
    }

    /// <summary>The tag and step of a one-scalar summary event; null for other events (the file version).</summary>
    static (string Tag, long Step)? EventInfo(byte[] ev)
    {
        long step = 0; string? tag = null;
        try
        {
            foreach (var (field, number, payload) in Fields(ev))
            {
                if (field == 2) step = (long)number;
                if (field != 5) continue;
                foreach (var (f, _, value) in Fields(payload))
                    if (f == 1)
                        foreach (var (vf, _, p) in Fields(value))
                            if (vf == 1) tag = Encoding.UTF8.GetString(p);
            }
        }
        catch (InvalidDataException) { return null; }
        return tag is null ? null : (tag, step);
    }

    /// <summary>The fields of a protobuf message: number, varint value (wire type 0) and payload (other types).</summary>
    static List<(int Field, ulong Number, byte[] Payload)> Fields(byte[] m)
    {
        var result = new List<(int, ulong, byte[])>();
        int i = 0;
        ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (i >= m.Length) throw new InvalidDataException("truncated varint");
                byte b = m[i++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidDataException("varint too long");
        }
        byte[] Take(long n)
        {
            if (n < 0 || n > m.Length - i) throw new InvalidDataException("truncated field");
            var p = m.AsSpan(i, (int)n).ToArray();
            i += (int)n;
            return p;
        }
        while (i < m.Length)
        {
            ulong key = Varint();
            int field = (int)(key >> 3);
            switch (key & 7)
            {
                case 0: result.Add((field, Varint(), [])); break;
                case 1: result.Add((field, 0, Take(8))); break;
                case 2: result.Add((field, 0, Take((long)Varint()))); break;
                case 5: result.Add((field, 0, Take(4))); break;
                default: throw new InvalidDataException($"wire type {key & 7}");
            }
        }
        return result;
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

    void WriteRecord(byte[] data) => WriteRecord(file, data);

    static void WriteRecord(Stream to, byte[] data)
    {
        var len = BitConverter.GetBytes((ulong)data.Length);
        to.Write(len);
        to.Write(BitConverter.GetBytes(Crc32C.Masked(len)));
        to.Write(data);
        to.Write(BitConverter.GetBytes(Crc32C.Masked(data)));
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
