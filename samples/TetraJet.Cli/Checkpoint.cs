using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace TetraJet.Cli;

/// <summary>What a checkpoint says about itself: enough to refuse a mismatched resume and to continue exactly.</summary>
public sealed record CheckpointHeader
{
    public int Format { get; init; } = Checkpoint.FormatVersion;
    public required string Model { get; init; }
    public required string Size { get; init; }
    public required string Recipe { get; init; }
    /// <summary><c>recipe.Describe()</c>: the quantizer table and options; must match on resume.</summary>
    public required string RecipeDescription { get; init; }
    public required string ModelConfig { get; init; }
    /// <summary>Optimizer steps taken; the data position is a pure function of (seed, step).</summary>
    public required long Step { get; init; }
    public required long TotalSteps { get; init; }
    public required long Seed { get; init; }
    public required int Batch { get; init; }
    public required double ElapsedSeconds { get; init; }
    public required double TrainSeconds { get; init; }
    /// <summary>libtorch's CPU generator state (base64).</summary>
    public required string TorchRngState { get; init; }
}

/// <summary>
/// Checkpoint file: "TJCKPT01", header JSON, model state (TorchSharp <c>Module.save</c>), optimizer state
/// (<c>save_state_dict</c>), then a SHA-256 of everything before it. Written to a temp file and renamed into
/// place, so a crash leaves either the old or the new checkpoint, never half of one.
/// </summary>
public sealed class Checkpoint
{
    public const int FormatVersion = 1;
    public const string FileName = "checkpoint.tjckpt";
    static readonly byte[] Magic = "TJCKPT01"u8.ToArray();

    public required CheckpointHeader Header { get; init; }
    public required byte[] ModelState { get; init; }
    public required byte[] OptimizerState { get; init; }

    public void Write(string path)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            var header = JsonSerializer.SerializeToUtf8Bytes(Header);
            w.Write(header.Length); w.Write(header);
            w.Write((long)ModelState.Length); w.Write(ModelState);
            w.Write((long)OptimizerState.Length); w.Write(OptimizerState);
        }
        var hash = SHA256.HashData(ms.GetBuffer().AsSpan(0, (int)ms.Length));
        ms.Write(hash);
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(ms.GetBuffer().AsSpan(0, (int)ms.Length));
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Reads and verifies a checkpoint; any damage is a <see cref="UsageException"/> that says what to do.</summary>
    public static Checkpoint Read(string path)
    {
        string Bad(string why) => $"checkpoint {path} is unusable ({why}); delete it to start over, or point --out at another run";
        byte[] b;
        try { b = File.ReadAllBytes(path); }
        catch (IOException e) { throw new UsageException(Bad(e.Message)); }
        if (b.Length < Magic.Length + 4 + 32 || !b.AsSpan(0, Magic.Length).SequenceEqual(Magic)) throw new UsageException(Bad("not a TetraJet checkpoint"));
        var body = b.AsSpan(0, b.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(b.AsSpan(b.Length - 32))) throw new UsageException(Bad("checksum mismatch: the file is truncated or corrupt"));
        try
        {
            using var r = new BinaryReader(new MemoryStream(b, 0, b.Length - 32));
            r.ReadBytes(Magic.Length);
            var header = JsonSerializer.Deserialize<CheckpointHeader>(r.ReadBytes(r.ReadInt32())) ?? throw new InvalidDataException("empty header");
            if (header.Format != FormatVersion) throw new InvalidDataException($"format {header.Format}, this build reads {FormatVersion}");
            var model = r.ReadBytes(checked((int)r.ReadInt64()));
            var opt = r.ReadBytes(checked((int)r.ReadInt64()));
            return new Checkpoint { Header = header, ModelState = model, OptimizerState = opt };
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or EndOfStreamException or OverflowException)
        {
            throw new UsageException(Bad(e.Message));
        }
    }
}
