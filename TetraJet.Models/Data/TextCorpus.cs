namespace TetraJet.Models.Data;

/// <summary>
/// A tokenized text with a deterministic train/validation split: the bytes are cut into 16 KiB chunks and every
/// 20th chunk (chunks 19, 39, …) is validation, 5% of the text spread over the whole corpus (every book of the
/// Bible contributes). The BPE tokenizer is trained on the training chunks only.
/// </summary>
public sealed class TextCorpus
{
    public const int ChunkBytes = 16 * 1024, ValidationEvery = 20, DefaultMerges = 1024;

    public BpeTokenizer Tokenizer { get; }
    public int[] Train { get; }
    public int[] Validation { get; }
    public string Path { get; }
    public long Bytes { get; }

    TextCorpus(string path, long bytes, BpeTokenizer tokenizer, int[] train, int[] validation)
    {
        Path = path; Bytes = bytes; Tokenizer = tokenizer; Train = train; Validation = validation;
    }

    /// <summary>Loads a UTF-8 text file, plain or gzip (default: the shipped King James Bible).</summary>
    public static TextCorpus Load(string? path = null, int merges = DefaultMerges)
    {
        path ??= System.IO.Path.Combine(DataFiles.Shipped("kjv"), "kjv.txt.gz");
        if (Directory.Exists(path)) throw new DataException($"{path} is a folder; for gpt, --data must be a UTF-8 text file (plain or .gz)");
        var bytes = DataFiles.ReadAll(path);
        if (bytes.Length < ChunkBytes * ValidationEvery)
            throw new DataException($"{path} holds {bytes.Length} bytes; the text loader needs at least {ChunkBytes * ValidationEvery} (320 KiB) to split off validation");
        if (Array.IndexOf(bytes, (byte)0) >= 0)
            throw new DataException($"{path} contains NUL bytes and does not look like text; --data must be a UTF-8 text file");
        var train = new List<byte>(bytes.Length);
        var val = new List<byte>(bytes.Length / ValidationEvery + ChunkBytes);
        for (int c = 0, start = 0; start < bytes.Length; c++, start += ChunkBytes)
        {
            var chunk = bytes.AsSpan(start, Math.Min(ChunkBytes, bytes.Length - start));
            (c % ValidationEvery == ValidationEvery - 1 ? val : train).AddRange(chunk);
        }
        byte[] trainBytes = [.. train], valBytes = [.. val];
        var tokenizer = BpeTokenizer.Train(trainBytes, merges);
        return new TextCorpus(path, bytes.Length, tokenizer, tokenizer.Encode(trainBytes), tokenizer.Encode(valBytes));
    }
}
