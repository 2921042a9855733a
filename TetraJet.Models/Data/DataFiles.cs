using System.IO.Compression;

namespace TetraJet.Models.Data;

/// <summary>Raised for a missing or malformed data file; the message says what to do.</summary>
public sealed class DataException(string message) : Exception(message);

/// <summary>Finds the shipped <c>data/</c> folder and reads plain or gzip files.</summary>
public static class DataFiles
{
    /// <summary>
    /// The repository's <c>data/&lt;name&gt;</c>: searched upwards from the working directory and from the
    /// assembly's folder, so that both <c>dotnet run</c> and test runs find it.
    /// </summary>
    public static string Shipped(string name)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "data", name);
                if (Directory.Exists(candidate)) return candidate;
            }
        }
        throw new DataException($"shipped data folder data/{name} not found above {Directory.GetCurrentDirectory()}; run from the repository or pass --data PATH");
    }

    /// <summary>All bytes of a file, gunzipped when it starts with the gzip magic.</summary>
    public static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new DataException($"data file {path} does not exist; check --data");
        var raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        try
        {
            using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DataException($"data file {path} is not valid gzip ({e.Message}); replace it with an intact copy");
        }
    }
}
