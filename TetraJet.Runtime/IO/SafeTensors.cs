using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace TetraJet.IO;

/// <summary>A malformed safetensors file, or a tensor it cannot hold; the message is one line naming the problem.</summary>
public sealed class SafeTensorsFormatException(string message) : Exception(message);

/// <summary>
/// One tensor of a safetensors file: its dtype as the format spells it (<c>F32</c>, <c>BF16</c>, <c>U8</c>,
/// <c>F8_E4M3</c>, …), its shape and its row-major little-endian bytes.
/// </summary>
public sealed record SafeTensor(string DType, long[] Shape, byte[] Data)
{
    /// <summary>Bytes per element of each dtype this reader and writer know.</summary>
    public static readonly IReadOnlyDictionary<string, int> ElementSizes = new Dictionary<string, int>
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    static readonly (ScalarType Type, string Name)[] TorchTypes =
    [
        (ScalarType.Float32, "F32"), (ScalarType.BFloat16, "BF16"), (ScalarType.Float16, "F16"), (ScalarType.Float64, "F64"),
        (ScalarType.Int64, "I64"), (ScalarType.Int32, "I32"), (ScalarType.Int16, "I16"), (ScalarType.Int8, "I8"),
        (ScalarType.Byte, "U8"), (ScalarType.Bool, "BOOL"),
    ];

    /// <summary>The tensor's bytes (copied to the CPU, made contiguous) under its own dtype, or <paramref name="dtype"/> for raw byte tensors (<c>F8_E4M3</c> codes).</summary>
    public static SafeTensor From(Tensor t, string? dtype = null)
    {
        var name = TorchTypes.FirstOrDefault(p => p.Type == t.dtype).Name
            ?? throw new SafeTensorsFormatException($"tensors of dtype {t.dtype} cannot be written");
        if (dtype is not null)
        {
            if (!ElementSizes.TryGetValue(dtype, out int size) || size != ElementSizes[name])
                throw new SafeTensorsFormatException($"a {t.dtype} tensor cannot be stored as {dtype}");
            name = dtype;
        }
        using var scope = NewDisposeScope();   // holds the intermediate tensors until the bytes are copied
        var c = t.detach().cpu().contiguous();
        return new SafeTensor(name, c.shape, c.bytes.ToArray());
    }

    /// <summary>A CPU tensor of these bytes; one-byte dtypes without a torch type (<c>F8_E4M3</c>) come back as uint8.</summary>
    public Tensor ToTensor()
    {
        var type = DType is "F8_E4M3" or "F8_E5M2" ? ScalarType.Byte
            : TorchTypes.FirstOrDefault(p => p.Name == DType).Name is null
                ? throw new SafeTensorsFormatException($"dtype {DType} has no torch type here")
                : TorchTypes.First(p => p.Name == DType).Type;
        var t = empty(Shape, type);
        t.bytes = Data;
        return t;
    }

    /// <summary>The bytes as little-endian float32 values (dtype F32 only).</summary>
    public float[] Floats()
    {
        if (DType != "F32") throw new SafeTensorsFormatException($"expected F32, got {DType}");
        var f = new float[Data.Length / 4];
        for (int i = 0; i < f.Length; i++) f[i] = BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(4 * i));
        return f;
    }
}

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header (each tensor's dtype, shape and
/// [begin, end) byte offsets into the data that follows, plus an optional <c>__metadata__</c> map of strings),
/// padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back. A tensor holds at most
/// 2 GiB here (one array).
/// </summary>
public static class SafeTensors
{
    public const string MetadataKey = "__metadata__";
    const long MaxHeader = 100L << 20;

    /// <summary>Writes the tensors in the order given, to a temporary file renamed into place.</summary>
    public static void Write(string path, IReadOnlyList<(string Name, SafeTensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) m[k] = v;
            header[MetadataKey] = m;
        }
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            if (name == MetadataKey || header.ContainsKey(name)) throw new SafeTensorsFormatException($"tensor name '{name}' is reserved or repeated");
            if (!SafeTensor.ElementSizes.TryGetValue(t.DType, out int size)) throw new SafeTensorsFormatException($"unknown dtype {t.DType} for '{name}'");
            if (t.Count * size != t.Data.Length) throw new SafeTensorsFormatException($"'{name}': shape [{string.Join(", ", t.Shape)}] of {t.DType} needs {t.Count * size} bytes, got {t.Data.Length}");
            header[name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray([.. t.Shape.Select(d => (JsonNode)d)]),
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            f.Write(len);
            f.Write(json);
            for (int i = json.Length; i < padded; i++) f.WriteByte((byte)' ');
            foreach (var (_, t) in tensors) f.Write(t.Data);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Reads every tensor and the metadata, checking that the offsets tile the data exactly.</summary>
    public static (Dictionary<string, SafeTensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        string Bad(string why) => $"{path} is not a valid safetensors file: {why}";
        if (b.Length < 8) throw new SafeTensorsFormatException(Bad("shorter than its 8-byte header length"));
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > MaxHeader || (long)n > b.Length - 8) throw new SafeTensorsFormatException(Bad($"header length {n} does not fit the file of {b.Length} bytes"));
        JsonObject header;
        try { header = JsonNode.Parse(b.AsSpan(8, (int)n)) as JsonObject ?? throw new JsonException("the header is not an object"); }
        catch (JsonException e) { throw new SafeTensorsFormatException(Bad($"header JSON: {e.Message}")); }
        long dataStart = 8 + (long)n, dataLength = b.Length - dataStart;
        var tensors = new Dictionary<string, SafeTensor>();
        var metadata = new Dictionary<string, string>();
        var spans = new List<(long Begin, long End, string Name)>();
        foreach (var (name, node) in header)
        {
            if (name == MetadataKey)
            {
                if (node is not JsonObject m) throw new SafeTensorsFormatException(Bad("__metadata__ is not an object"));
                foreach (var (k, v) in m)
                    metadata[k] = v is JsonValue jv && jv.TryGetValue(out string? s) ? s : throw new SafeTensorsFormatException(Bad($"metadata '{k}' is not a string"));
                continue;
            }
            try
            {
                var entry = node as JsonObject ?? throw new SafeTensorsFormatException(Bad($"entry '{name}' is not an object"));
                string dtype = entry["dtype"]!.GetValue<string>();
                long[] shape = [.. entry["shape"]!.AsArray().Select(d => d!.GetValue<long>())];
                var offsets = entry["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                if (!SafeTensor.ElementSizes.TryGetValue(dtype, out int size)) throw new SafeTensorsFormatException(Bad($"'{name}' has unknown dtype {dtype}"));
                if (shape.Any(d => d < 0)) throw new SafeTensorsFormatException(Bad($"'{name}' has a negative dimension"));
                long bytes = checked(shape.Aggregate(1L, (a, d) => checked(a * d)) * size);
                if (begin < 0 || end < begin || end > dataLength || end - begin != bytes)
                    throw new SafeTensorsFormatException(Bad($"'{name}' spans bytes [{begin}, {end}) of {dataLength}, but its shape needs {bytes}"));
                if (bytes > int.MaxValue) throw new SafeTensorsFormatException(Bad($"'{name}' is larger than 2 GiB"));
                tensors[name] = new SafeTensor(dtype, shape, b.AsSpan((int)(dataStart + begin), (int)bytes).ToArray());
                spans.Add((begin, end, name));
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or OverflowException or ArgumentException)
            {
                throw new SafeTensorsFormatException(Bad($"entry '{name}' is malformed ({e.Message})"));
            }
        }
        long at = 0;
        foreach (var (begin, end, name) in spans.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            if (begin != at) throw new SafeTensorsFormatException(Bad($"'{name}' starts at byte {begin}, not {at}: the data has a hole or an overlap"));
            at = end;
        }
        if (at != dataLength) throw new SafeTensorsFormatException(Bad($"{dataLength - at} bytes after the last tensor"));
        return (tensors, metadata);
    }
}
