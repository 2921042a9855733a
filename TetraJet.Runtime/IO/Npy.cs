using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace TetraJet.IO;

/// <summary>A malformed or unsupported <c>.npy</c> file; the message is one line naming the problem.</summary>
public sealed class NpyFormatException(string message) : Exception(message);

/// <summary>
/// NumPy <c>.npy</c> files holding a 2-D little-endian float32 C-order matrix: read (format versions 1.0 and 2.0)
/// and write (version 1.0). Anything else is rejected with an <see cref="NpyFormatException"/>.
/// </summary>
public static class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    const int ChunkFloats = 1 << 24;

    /// <summary>Reads a [rows, cols] float32 matrix.</summary>
    public static float[] ReadMatrix(string path, out int rows, out int cols)
    {
        using var stream = File.OpenRead(path);
        return ReadMatrix(stream, out rows, out cols);
    }

    /// <summary>Reads a [rows, cols] float32 matrix from the stream's current position to its end.</summary>
    public static float[] ReadMatrix(Stream stream, out int rows, out int cols)
    {
        Span<byte> pre = stackalloc byte[8];
        if (!TryReadExactly(stream, pre)) throw new NpyFormatException("not a .npy file: shorter than its preamble");
        if (!pre[..6].SequenceEqual(Magic)) throw new NpyFormatException("not a .npy file: bad magic string");
        byte major = pre[6], minor = pre[7];
        if ((major != 1 && major != 2) || minor != 0) throw new NpyFormatException($"unsupported .npy format version {major}.{minor} (expected 1.0 or 2.0)");
        int lenSize = major == 1 ? 2 : 4;
        Span<byte> lenBytes = stackalloc byte[4];
        if (!TryReadExactly(stream, lenBytes[..lenSize])) throw new NpyFormatException("truncated .npy header");
        long headerLen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(lenBytes) : BinaryPrimitives.ReadUInt32LittleEndian(lenBytes);
        if (headerLen > 1 << 20) throw new NpyFormatException($".npy header of {headerLen} bytes is implausibly long");
        var headerBytes = new byte[headerLen];
        if (!TryReadExactly(stream, headerBytes)) throw new NpyFormatException("truncated .npy header");
        var header = ParseHeader(Encoding.Latin1.GetString(headerBytes));

        if (!header.TryGetValue("descr", out var descr) || descr is not string dtype) throw new NpyFormatException(".npy header has no 'descr' string");
        if (dtype != "<f4") throw new NpyFormatException($"unsupported dtype '{dtype}' (expected '<f4', little-endian float32)");
        if (!header.TryGetValue("fortran_order", out var fo) || fo is not bool fortran) throw new NpyFormatException(".npy header has no 'fortran_order' flag");
        if (fortran) throw new NpyFormatException("fortran_order True is not supported (expected C order)");
        if (!header.TryGetValue("shape", out var sh) || sh is not long[] shape) throw new NpyFormatException(".npy header has no 'shape' tuple");
        if (shape.Length != 2) throw new NpyFormatException($"expected a 2-D array, got {shape.Length}-D shape ({string.Join(", ", shape)})");
        if (shape[0] > int.MaxValue || shape[1] > int.MaxValue || shape[0] * shape[1] > Array.MaxLength)
            throw new NpyFormatException($"array of shape ({shape[0]}, {shape[1]}) is too large");
        rows = (int)shape[0];
        cols = (int)shape[1];
        var data = new float[rows * (long)cols];
        // In pieces: the bytes of more than 2^29 floats do not fit one span.
        for (int at = 0, n; at < data.Length; at += n)
        {
            n = Math.Min(ChunkFloats, data.Length - at);
            if (!TryReadExactly(stream, MemoryMarshal.AsBytes(data.AsSpan(at, n))))
                throw new NpyFormatException($"truncated .npy data: shape ({rows}, {cols}) needs {4L * data.Length} bytes");
        }
        if (stream.ReadByte() != -1) throw new NpyFormatException($"trailing bytes after the .npy data of shape ({rows}, {cols})");
        if (!BitConverter.IsLittleEndian)
        {
            var words = MemoryMarshal.Cast<float, uint>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(words, words);
        }
        return data;
    }

    /// <summary>Writes a [rows, cols] float32 matrix as a version 1.0 <c>.npy</c> file.</summary>
    public static void WriteMatrix(string path, ReadOnlySpan<float> data, int rows, int cols)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        WriteMatrix(stream, data, rows, cols);
    }

    public static void WriteMatrix(Stream stream, ReadOnlySpan<float> data, int rows, int cols)
    {
        if (data.Length != rows * (long)cols) throw new ArgumentException($"{data.Length} values do not fill shape ({rows}, {cols})");
        string dict = string.Create(CultureInfo.InvariantCulture, $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
        // Pad with spaces and a final newline so that the data starts on a 64-byte boundary, as NumPy does.
        int total = Magic.Length + 2 + 2 + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        string header = dict + new string(' ', pad) + "\n";
        if (header.Length > ushort.MaxValue) throw new ArgumentException("header too long for .npy version 1.0");
        stream.Write(Magic);
        stream.Write([1, 0]);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
        for (int at = 0, n; at < data.Length; at += n)
        {
            n = Math.Min(ChunkFloats, data.Length - at);
            var piece = data.Slice(at, n);
            if (BitConverter.IsLittleEndian) stream.Write(MemoryMarshal.AsBytes(piece));
            else
            {
                var copy = piece.ToArray();
                var words = MemoryMarshal.Cast<float, uint>(copy.AsSpan());
                BinaryPrimitives.ReverseEndianness(words, words);
                stream.Write(MemoryMarshal.AsBytes(copy.AsSpan()));
            }
        }
    }

    static bool TryReadExactly(Stream stream, Span<byte> buffer)
    {
        try { stream.ReadExactly(buffer); return true; }
        catch (EndOfStreamException) { return false; }
    }

    /// <summary>Parses the header's Python dict literal: string keys; values are strings, True/False or tuples of integers.</summary>
    static Dictionary<string, object> ParseHeader(string text)
    {
        var result = new Dictionary<string, object>();
        int p = 0;
        void Skip() { while (p < text.Length && char.IsWhiteSpace(text[p])) p++; }
        NpyFormatException Bad(string what) => new($"malformed .npy header: {what}");
        string ReadString()
        {
            char quote = text[p];
            int end = text.IndexOf(quote, p + 1);
            if (end < 0) throw Bad("unterminated string");
            string s = text[(p + 1)..end];
            p = end + 1;
            return s;
        }
        Skip();
        if (p >= text.Length || text[p] != '{') throw Bad("expected '{'");
        p++;
        while (true)
        {
            Skip();
            if (p >= text.Length) throw Bad("expected '}'");
            if (text[p] == '}') break;
            if (text[p] != '\'' && text[p] != '"') throw Bad("expected a quoted key");
            string key = ReadString();
            Skip();
            if (p >= text.Length || text[p] != ':') throw Bad($"expected ':' after '{key}'");
            p++;
            Skip();
            if (p >= text.Length) throw Bad($"missing value for '{key}'");
            object value;
            if (text[p] == '\'' || text[p] == '"') value = ReadString();
            else if (string.CompareOrdinal(text, p, "True", 0, 4) == 0) { value = true; p += 4; }
            else if (string.CompareOrdinal(text, p, "False", 0, 5) == 0) { value = false; p += 5; }
            else if (text[p] == '(')
            {
                int end = text.IndexOf(')', p);
                if (end < 0) throw Bad("unterminated tuple");
                var parts = text[(p + 1)..end].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                var dims = new long[parts.Length];
                for (int i = 0; i < parts.Length; i++)
                {
                    string part = parts[i].TrimEnd('L');
                    if (!long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out dims[i])) throw Bad($"bad dimension '{parts[i]}'");
                }
                value = dims;
                p = end + 1;
            }
            else throw Bad($"unsupported value for '{key}'");
            result[key] = value;
            Skip();
            if (p < text.Length && text[p] == ',') p++;
        }
        return result;
    }
}
