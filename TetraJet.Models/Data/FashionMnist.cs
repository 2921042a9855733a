using static TorchSharp.torch;

namespace TetraJet.Models.Data;

/// <summary>Images and labels of one idx image/label file pair.</summary>
public sealed class ImageSet(byte[] pixels, byte[] labels, int rows, int cols)
{
    public byte[] Pixels { get; } = pixels;
    public byte[] Labels { get; } = labels;
    public int Rows { get; } = rows;
    public int Cols { get; } = cols;
    public int Count => Labels.Length;

    /// <summary>The first <paramref name="n"/> items (tests and quick runs).</summary>
    public ImageSet Take(int n)
    {
        n = Math.Min(n, Count);
        return new(Pixels.AsSpan(0, n * Rows * Cols).ToArray(), Labels.AsSpan(0, n).ToArray(), Rows, Cols);
    }
}

/// <summary>Reads idx files (LeCun's MNIST format) with full validation.</summary>
public static class Idx
{
    public const int ImageMagic = 0x00000803, LabelMagic = 0x00000801;

    static int BigEndian(byte[] b, int offset) => b[offset] << 24 | b[offset + 1] << 16 | b[offset + 2] << 8 | b[offset + 3];

    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        var b = DataFiles.ReadAll(path);
        if (b.Length < 16 || BigEndian(b, 0) != ImageMagic)
            throw new DataException($"{path} is not an idx3 image file (magic 0x00000803 expected); point --data at a Fashion-MNIST folder");
        int n = BigEndian(b, 4), rows = BigEndian(b, 8), cols = BigEndian(b, 12);
        if (n <= 0 || rows <= 0 || cols <= 0 || (long)n * rows * cols != b.Length - 16)
            throw new DataException($"{path}: header says {n}×{rows}×{cols} images but the file holds {b.Length - 16} pixel bytes; the file is truncated or corrupt");
        return (b.AsSpan(16).ToArray(), n, rows, cols);
    }

    public static byte[] ReadLabels(string path, int classes)
    {
        var b = DataFiles.ReadAll(path);
        if (b.Length < 8 || BigEndian(b, 0) != LabelMagic)
            throw new DataException($"{path} is not an idx1 label file (magic 0x00000801 expected); point --data at a Fashion-MNIST folder");
        int n = BigEndian(b, 4);
        if (n <= 0 || n != b.Length - 8)
            throw new DataException($"{path}: header says {n} labels but the file holds {b.Length - 8}; the file is truncated or corrupt");
        var labels = b.AsSpan(8).ToArray();
        foreach (var l in labels)
            if (l >= classes) throw new DataException($"{path}: label {l} is outside 0..{classes - 1}");
        return labels;
    }

    /// <summary>Reads <c>{prefix}-images-idx3-ubyte[.gz]</c> and <c>{prefix}-labels-idx1-ubyte[.gz]</c>.</summary>
    public static ImageSet ReadSet(string folder, string prefix, int classes = 10)
    {
        string Find(string stem)
        {
            foreach (var name in new[] { stem + ".gz", stem })
                if (File.Exists(Path.Combine(folder, name))) return Path.Combine(folder, name);
            throw new DataException($"{Path.Combine(folder, stem)}[.gz] not found; --data must be a folder with Fashion-MNIST idx files (train-* and t10k-*)");
        }
        var (pixels, n, rows, cols) = ReadImages(Find($"{prefix}-images-idx3-ubyte"));
        var labels = ReadLabels(Find($"{prefix}-labels-idx1-ubyte"), classes);
        if (labels.Length != n) throw new DataException($"{folder}: {prefix} has {n} images but {labels.Length} labels");
        return new ImageSet(pixels, labels, rows, cols);
    }
}

/// <summary>Training-time augmentation of images.</summary>
[Flags]
public enum Augment
{
    None = 0,
    /// <summary>Random crop of the image zero-padded by 2 pixels (a shift of up to ±2 pixels).</summary>
    Crop = 1,
    /// <summary>Horizontal flip with probability ½.</summary>
    Flip = 2,
}

/// <summary>Fashion-MNIST: train (shipped subset) and test sets, normalisation and augmentation.</summary>
public sealed class FashionMnist
{
    public static readonly string[] ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    // Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]).
    const float Mean = 0.2860f, Std = 0.3530f;
    const int Pad = 2;

    public ImageSet Train { get; }
    public ImageSet Test { get; }
    public string Folder { get; }

    FashionMnist(string folder, ImageSet train, ImageSet test) { Folder = folder; Train = train; Test = test; }

    /// <summary>Loads <paramref name="folder"/> (default: the shipped <c>data/fashion-mnist</c>).</summary>
    public static FashionMnist Load(string? folder = null)
    {
        folder ??= DataFiles.Shipped("fashion-mnist");
        if (!Directory.Exists(folder)) throw new DataException($"data folder {folder} does not exist; --data must be a folder with Fashion-MNIST idx files");
        var train = Idx.ReadSet(folder, "train");
        var test = Idx.ReadSet(folder, "t10k");
        if (train.Rows != test.Rows || train.Cols != test.Cols)
            throw new DataException($"{folder}: train images are {train.Rows}×{train.Cols} but test images are {test.Rows}×{test.Cols}");
        return new FashionMnist(folder, train, test);
    }

    public FashionMnist Subset(int trainCount, int testCount) => new(Folder, Train.Take(trainCount), Test.Take(testCount));

    /// <summary>
    /// A normalised batch [B, 1, H, W] and labels [B]. Augmentation draws from <paramref name="rng"/>, so that a
    /// batch is a pure function of the seed and step.
    /// </summary>
    public static (Tensor Images, Tensor Labels) Batch(ImageSet set, ReadOnlySpan<int> indices, Augment augment, SplitMix64 rng)
    {
        int h = set.Rows, w = set.Cols, hw = h * w, b = indices.Length;
        var x = new float[b * hw];
        var y = new long[b];
        float zero = -Mean / Std;
        for (int n = 0; n < b; n++)
        {
            int idx = indices[n];
            y[n] = set.Labels[idx];
            int dy = 0, dx = 0; bool flip = false;
            if (augment.HasFlag(Augment.Crop))
            {
                dy = rng.NextInt(2 * Pad + 1) - Pad;
                dx = rng.NextInt(2 * Pad + 1) - Pad;
            }
            if (augment.HasFlag(Augment.Flip)) flip = (rng.Next() & 1) == 1;
            var src = set.Pixels.AsSpan(idx * hw, hw);
            var dst = x.AsSpan(n * hw, hw);
            for (int r = 0; r < h; r++)
            {
                int sr = r + dy;
                for (int c = 0; c < w; c++)
                {
                    int sc = (flip ? w - 1 - c : c) + dx;
                    dst[r * w + c] = sr < 0 || sr >= h || sc < 0 || sc >= w ? zero : (src[sr * w + sc] / 255f - Mean) / Std;
                }
            }
        }
        return (tensor(x, [b, 1, h, w]), tensor(y, [b]));
    }
}
