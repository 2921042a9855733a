using System.Buffers.Binary;
using System.Text;

namespace TetraJet.Models.Tests;

/// <summary>Independent readers for the files a run writes: PNG header and TensorBoard records.</summary>
static class OutputFormats
{
    public static (int Width, int Height) PngSize(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal(13u, BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(8)));
        Assert.Equal("IHDR", Encoding.ASCII.GetString(png, 12, 4));
        uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(29));
        Assert.Equal(Crc32(png.AsSpan(12, 17)), crc);
        Assert.Equal("IEND", Encoding.ASCII.GetString(png, png.Length - 8, 4));
        return ((int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(16)), (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(20)));
    }

    /// <summary>PNG's CRC-32 (polynomial 0xEDB88320) computed bit by bit.</summary>
    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB88320 : c >> 1;
        }
        return ~c;
    }

    /// <summary>CRC-32C computed bit by bit (independent of the writer's table).</summary>
    static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78 : c >> 1;
        }
        c = ~c;
        return ((c >> 15) | (c << 17)) + 0xA282EAD8;
    }

    static ulong Varint(ReadOnlySpan<byte> b, ref int i)
    {
        ulong v = 0; int shift = 0;
        while (true) { byte x = b[i++]; v |= (ulong)(x & 0x7F) << shift; if (x < 0x80) return v; shift += 7; }
    }

    /// <summary>All scalar summaries of an event file; asserts both CRCs of every record.</summary>
    public static List<(string Tag, float Value, long Step)> ReadScalars(byte[] file)
    {
        var result = new List<(string, float, long)>();
        int pos = 0, records = 0;
        while (pos < file.Length)
        {
            var lenBytes = file.AsSpan(pos, 8);
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            Assert.Equal(MaskedCrc32C(lenBytes), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 8)));
            var data = file.AsSpan(pos + 12, (int)len);
            Assert.Equal(MaskedCrc32C(data), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 12 + (int)len)));
            pos += 16 + (int)len;
            records++;
            long step = 0; string? tag = null; float value = float.NaN; bool version = false;
            ParseMessage(data, (field, wire, payload, number) =>
            {
                if (field == 2 && wire == 0) step = (long)number;
                if (field == 3) version = Encoding.UTF8.GetString(payload) == "brain.Event:2";
                if (field == 5)
                    ParseMessage(payload, (f, w, valueMsg, _) =>
                    {
                        if (f != 1) return;
                        ParseMessage(valueMsg, (vf, vw, p, _) =>
                        {
                            if (vf == 1) tag = Encoding.UTF8.GetString(p);
                            if (vf == 2 && vw == 5) value = BitConverter.ToSingle(p);
                        });
                    });
            });
            if (records == 1) Assert.True(version, "first record must carry file_version brain.Event:2");
            if (tag is not null) result.Add((tag, value, step));
        }
        Assert.Equal(file.Length, pos);
        return result;
    }

    delegate void FieldHandler(int field, int wire, ReadOnlySpan<byte> payload, ulong number);

    static void ParseMessage(ReadOnlySpan<byte> m, FieldHandler onField)
    {
        int i = 0;
        while (i < m.Length)
        {
            ulong key = Varint(m, ref i);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: { ulong v = Varint(m, ref i); onField(field, wire, default, v); break; }
                case 1: onField(field, wire, m.Slice(i, 8), 0); i += 8; break;
                case 2: { int n = (int)Varint(m, ref i); onField(field, wire, m.Slice(i, n), 0); i += n; break; }
                case 5: onField(field, wire, m.Slice(i, 4), 0); i += 4; break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
    }
}
