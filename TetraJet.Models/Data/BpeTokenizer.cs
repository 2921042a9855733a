using System.Text;

namespace TetraJet.Models.Data;

/// <summary>
/// Byte-level BPE: 256 byte tokens plus learned merges. Text is first cut into words (an optional leading space
/// plus a run of letters, a run of digits, or one other byte) so that merges never cross word boundaries.
/// Training is deterministic (ties go to the smaller pair) and takes seconds on the shipped corpus.
/// </summary>
public sealed class BpeTokenizer
{
    readonly List<(int A, int B)> merges;
    readonly Dictionary<(int, int), int> rank = [];
    readonly byte[][] vocab;
    readonly Dictionary<string, int[]> cache = [];

    public int VocabSize => vocab.Length;
    public IReadOnlyList<(int A, int B)> Merges => merges;

    BpeTokenizer(List<(int, int)> merges)
    {
        this.merges = merges;
        vocab = new byte[256 + merges.Count][];
        for (int i = 0; i < 256; i++) vocab[i] = [(byte)i];
        for (int m = 0; m < merges.Count; m++)
        {
            var (a, b) = merges[m];
            vocab[256 + m] = [.. vocab[a], .. vocab[b]];
            rank[(a, b)] = m;
        }
    }

    static bool Letter(byte c) => c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= 0x80 or (byte)'\'';
    static bool Digit(byte c) => c is >= (byte)'0' and <= (byte)'9';

    /// <summary>Cuts bytes into words; each word is encoded on its own.</summary>
    public static IEnumerable<(int Start, int Length)> Words(byte[] text)
    {
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            if (text[i] == (byte)' ' && i + 1 < text.Length && (Letter(text[i + 1]) || Digit(text[i + 1]))) i++;
            if (Letter(text[i])) { while (i < text.Length && Letter(text[i])) i++; }
            else if (Digit(text[i])) { while (i < text.Length && Digit(text[i])) i++; }
            else i++;
            yield return (start, i - start);
        }
    }

    /// <summary>Learns <paramref name="mergeCount"/> merges from <paramref name="text"/>.</summary>
    public static BpeTokenizer Train(byte[] text, int mergeCount)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (s, n) in Words(text))
        {
            var key = Encoding.Latin1.GetString(text, s, n);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        // Unique words in a fixed order so that training is deterministic.
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (Ids: Encoding.Latin1.GetBytes(kv.Key).Select(b => (int)b).ToList(), Count: kv.Value)).ToList();
        var merges = new List<(int, int)>(mergeCount);
        var pairs = new Dictionary<(int, int), long>();
        for (int m = 0; m < mergeCount; m++)
        {
            pairs.Clear();
            foreach (var (ids, count) in words)
                for (int i = 0; i + 1 < ids.Count; i++)
                {
                    var p = (ids[i], ids[i + 1]);
                    pairs[p] = pairs.GetValueOrDefault(p) + count;
                }
            if (pairs.Count == 0) break;
            var best = pairs.First();
            foreach (var kv in pairs)
                if (kv.Value > best.Value || kv.Value == best.Value && kv.Key.CompareTo(best.Key) < 0) best = kv;
            if (best.Value < 2) break;
            int newId = 256 + m;
            var (a, b) = best.Key;
            foreach (var (ids, _) in words)
                for (int i = 0; i + 1 < ids.Count; i++)
                    if (ids[i] == a && ids[i + 1] == b) { ids[i] = newId; ids.RemoveAt(i + 1); }
            merges.Add(best.Key);
        }
        return new BpeTokenizer(merges);
    }

    int[] EncodeWord(byte[] text, int start, int length)
    {
        var key = Encoding.Latin1.GetString(text, start, length);
        if (cache.TryGetValue(key, out var hit)) return hit;
        var ids = new List<int>(length);
        for (int i = 0; i < length; i++) ids.Add(text[start + i]);
        while (ids.Count > 1)
        {
            int bestRank = int.MaxValue, at = -1;
            for (int i = 0; i + 1 < ids.Count; i++)
                if (rank.TryGetValue((ids[i], ids[i + 1]), out var r) && r < bestRank) { bestRank = r; at = i; }
            if (at < 0) break;
            ids[at] = 256 + bestRank;
            ids.RemoveAt(at + 1);
        }
        return cache[key] = [.. ids];
    }

    public int[] Encode(byte[] text)
    {
        var output = new List<int>(text.Length / 2);
        foreach (var (s, n) in Words(text)) output.AddRange(EncodeWord(text, s, n));
        return [.. output];
    }

    public int[] Encode(string text) => Encode(Encoding.UTF8.GetBytes(text));

    public byte[] DecodeBytes(IEnumerable<int> ids) => [.. ids.SelectMany(i => vocab[i])];

    /// <summary>Decodes to text; a cut inside a multi-byte character shows as U+FFFD.</summary>
    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));
}
