using System.IO.Compression;
using TetraJet.Models.Data;

namespace TetraJet.Models.Tests;

public class DataTests
{
    [Fact]
    public void Shipped_fashion_mnist_loads_with_the_expected_sizes()
    {
        var d = FashionMnist.Load();
        Assert.Equal(10_000, d.Test.Count);
        Assert.InRange(d.Train.Count, 30_000, 40_000);
        Assert.Equal((28, 28), (d.Train.Rows, d.Train.Cols));
        Assert.Equal(Enumerable.Range(0, 10), d.Test.Labels.Distinct().Select(l => (int)l).Order());
    }

    [Fact]
    public void Augmented_batches_are_a_function_of_the_seed_and_step()
    {
        var set = FashionMnist.Load().Train.Take(64);
        int[] idx = [.. Enumerable.Range(0, 16)];
        var (a, _) = FashionMnist.Batch(set, idx, Augment.Crop | Augment.Flip, SplitMix64.For(1, 5, 1));
        var (b, _) = FashionMnist.Batch(set, idx, Augment.Crop | Augment.Flip, SplitMix64.For(1, 5, 1));
        var (c, _) = FashionMnist.Batch(set, idx, Augment.Crop | Augment.Flip, SplitMix64.For(1, 6, 1));
        var (plain, _) = FashionMnist.Batch(set, idx, Augment.None, default);
        Assert.True(a.allclose(b, 0, 0));
        Assert.False(a.allclose(c, 0, 0));
        Assert.False(a.allclose(plain, 0, 0));
        Assert.Equal([16L, 1L, 28L, 28L], a.shape);
    }

    [Fact]
    public void Idx_reader_rejects_bad_magic_and_truncation()
    {
        var dir = CliHarness.TempDir("idx");
        var bad = Path.Combine(dir, "a.gz");
        using (var f = new GZipStream(File.Create(bad), CompressionLevel.Fastest)) f.Write([0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28]);
        Assert.Contains("magic", Assert.Throws<DataException>(() => Idx.ReadImages(bad)).Message);
        var shortFile = Path.Combine(dir, "b");
        File.WriteAllBytes(shortFile, [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]);
        Assert.Contains("truncated", Assert.Throws<DataException>(() => Idx.ReadImages(shortFile)).Message);
    }

    [Fact]
    public void Bpe_round_trips_text_and_trains_deterministically()
    {
        var text = "In the beginning God created the heaven and the earth. And the earth was without form, and void; 1:2 ümlaut\n"u8.ToArray();
        var corpus = Enumerable.Repeat(text, 50).SelectMany(b => b).ToArray();
        var a = BpeTokenizer.Train(corpus, 100);
        var b = BpeTokenizer.Train(corpus, 100);
        Assert.Equal(a.Merges, b.Merges);
        var ids = a.Encode(text);
        Assert.True(ids.Length < text.Length / 2);
        Assert.Equal(text, a.DecodeBytes(ids));
    }

    [Fact]
    public void Text_corpus_splits_every_twentieth_chunk_to_validation()
    {
        var c = TextCorpus.Load(merges: 64);
        double ratio = (double)c.Validation.Length / (c.Train.Length + c.Validation.Length);
        Assert.InRange(ratio, 0.04, 0.06);
        Assert.StartsWith("Genesis 1\nIn the beginning", c.Tokenizer.Decode(c.Train.Take(20)));
    }
}
