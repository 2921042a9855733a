using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace TetraJet.Models.Training;

/// <summary>A checkpoint file that cannot be used; the message names the file and the reason.</summary>
public sealed class CheckpointException(string message) : Exception(message);

/// <summary>What a checkpoint says about itself: enough to rebuild the model, refuse a mismatched resume and continue exactly.</summary>
public sealed record CheckpointHeader
{
    public int Format { get; init; } = Checkpoint.FormatVersion;
    /// <summary>"vit" or "gpt".</summary>
    public required string Model { get; init; }
    public required string Size { get; init; }
    public required string Recipe { get; init; }
    /// <summary><c>recipe.Describe()</c>: the quantizer table and options; must match on resume.</summary>
    public required string RecipeDescription { get; init; }
    /// <summary>The recipe itself (format 2 on), so that <see cref="Checkpoint.CreateModel"/> can rebuild the model.</summary>
    public JsonElement? RecipeSpec { get; init; }
    /// <summary>The model config (<see cref="VitConfig"/> or <see cref="GptConfig"/>) as JSON.</summary>
    public required string ModelConfig { get; init; }
    /// <summary>Optimizer steps taken; the data position is a pure function of (seed, step).</summary>
    public required long Step { get; init; }
    public required long TotalSteps { get; init; }
    public required long Seed { get; init; }
    public required int Batch { get; init; }
    /// <summary>Data-parallel ranks (GPUs) that trained it; 1 for one process and for checkpoints written before this field.</summary>
    public int Gpus { get; init; } = 1;
    public required double ElapsedSeconds { get; init; }
    public required double TrainSeconds { get; init; }
    /// <summary>libtorch's CPU generator state (base64).</summary>
    public required string TorchRngState { get; init; }
}

/// <summary>
/// The checkpoint file <c>tetrajet train</c> writes (<c>checkpoint.tjckpt</c>) and <see cref="TaskTrainer"/> resumes
/// from: "TJCKPT01", the header as JSON, the model state (TorchSharp <c>Module.save</c>, the layers' counters
/// included), the optimizer state (<see cref="QuantizedTraining.SaveOptimizer"/>), the oscillation trackers' windows
/// (format 2 on), then a SHA-256 of everything before it. <see cref="Write"/> goes through a temp file and a rename,
/// so a crash leaves either the old or the new checkpoint, never half of one.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>2: layer counters in the model state, the recipe in the header, oscillation windows. 1 had none of them.</summary>
    public const int FormatVersion = 2;
    public const string FileName = "checkpoint.tjckpt";
    static readonly byte[] Magic = "TJCKPT01"u8.ToArray();

    static readonly JsonSerializerOptions RecipeJson = new() { Converters = { new JsonStringEnumConverter() } };

    public required CheckpointHeader Header { get; init; }
    public required byte[] ModelState { get; init; }
    public required byte[] OptimizerState { get; init; }
    /// <summary><see cref="QuantizationExtensions.SaveOscillationTracking"/> bytes; empty in format 1.</summary>
    public byte[] TrackingState { get; init; } = [];

    /// <summary>The recipe as JSON, for <see cref="CheckpointHeader.RecipeSpec"/>.</summary>
    public static JsonElement RecipeToJson(Recipe recipe) => JsonSerializer.SerializeToElement(recipe, RecipeJson);

    /// <summary>The recipe the checkpoint's model was built with (format 2 on).</summary>
    public Recipe Recipe => Header.RecipeSpec is JsonElement spec
        ? spec.Deserialize<Recipe>(RecipeJson) ?? throw new CheckpointException("the checkpoint's recipe is empty")
        : throw new CheckpointException($"the checkpoint is format {Header.Format}, which does not record the recipe; build the model yourself and call LoadModel");

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
            if (Header.Format >= 2) { w.Write((long)TrackingState.Length); w.Write(TrackingState); }
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

    /// <summary>Reads and verifies a checkpoint (formats 1 and 2); any damage is a <see cref="CheckpointException"/>.</summary>
    public static Checkpoint Read(string path)
    {
        string Bad(string why) => $"checkpoint {path} is unusable ({why}); delete it to start over, or point --out at another run";
        byte[] b;
        try { b = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CheckpointException(Bad(e.Message)); }
        if (b.Length < Magic.Length + 4 + 32 || !b.AsSpan(0, Magic.Length).SequenceEqual(Magic)) throw new CheckpointException(Bad("not a TetraJet checkpoint"));
        var body = b.AsSpan(0, b.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(b.AsSpan(b.Length - 32))) throw new CheckpointException(Bad("checksum mismatch: the file is truncated or corrupt"));
        try
        {
            using var r = new BinaryReader(new MemoryStream(b, 0, b.Length - 32));
            r.ReadBytes(Magic.Length);
            var header = JsonSerializer.Deserialize<CheckpointHeader>(r.ReadBytes(r.ReadInt32())) ?? throw new InvalidDataException("empty header");
            if (header.Format is < 1 or > FormatVersion) throw new InvalidDataException($"format {header.Format}, this build reads 1 to {FormatVersion}");
            var model = r.ReadBytes(checked((int)r.ReadInt64()));
            var opt = r.ReadBytes(checked((int)r.ReadInt64()));
            var tracking = header.Format >= 2 ? r.ReadBytes(checked((int)r.ReadInt64())) : [];
            return new Checkpoint { Header = header, ModelState = model, OptimizerState = opt, TrackingState = tracking };
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or EndOfStreamException or OverflowException)
        {
            throw new CheckpointException(Bad(e.Message));
        }
    }

    /// <summary>
    /// Loads the saved weights, buffers and layer counters into <paramref name="model"/>, which must have the same
    /// structure. A format-1 file has no layer counters: those keep the model's own values.
    /// </summary>
    public void LoadModel(nn.Module model)
    {
        var expected = model.state_dict().Keys.ToHashSet();
        var loaded = new Dictionary<string, bool>();
        try
        {
            model.load(new BinaryReader(new MemoryStream(ModelState)), strict: Header.Format >= 2, loadedParameters: loaded);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or EndOfStreamException or IOException)
        {
            throw new CheckpointException($"the checkpoint's model state does not fit this model ({e.Message})");
        }
        if (Header.Format < 2)
        {
            var missing = expected.Where(k => !k.EndsWith(QLinear.CountersName, StringComparison.Ordinal) && !loaded.GetValueOrDefault(k)).ToList();
            if (missing.Count > 0 || loaded.Any(kv => !kv.Value))
                throw new CheckpointException($"the checkpoint's model state does not fit this model (missing {string.Join(", ", missing.Take(3))})");
        }
    }

    /// <summary>Builds the checkpoint's model (ViT or GPT, from the header's config and recipe) and loads its state.</summary>
    public nn.Module<Tensor, Tensor> CreateModel()
    {
        var recipe = Recipe;
        nn.Module<Tensor, Tensor> model = Header.Model switch
        {
            "vit" => new Vit(JsonSerializer.Deserialize<VitConfig>(Header.ModelConfig) ?? throw new CheckpointException("empty ViT config"), recipe),
            "gpt" => new Gpt(JsonSerializer.Deserialize<GptConfig>(Header.ModelConfig) ?? throw new CheckpointException("empty GPT config"), recipe),
            _ => throw new CheckpointException($"unknown model '{Header.Model}' in the checkpoint"),
        };
        LoadModel(model);
        return model;
    }
}
