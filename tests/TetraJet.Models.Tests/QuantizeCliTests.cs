using System.Text;
using System.Text.Json;
using TetraJet.Cli.Quantize;
using TetraJet.IO;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;

namespace TetraJet.Models.Tests;

/// <summary>The contract of <c>tetrajet quantize</c>, run in process.</summary>
public sealed class QuantizeCliTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("tetrajet-quantize-");

    public void Dispose() => _dir.Delete(recursive: true);

    string PathOf(string name) => Path.Combine(_dir.FullName, name);

    static float[] RandomMatrix(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, rows * cols).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-4, 5)))).ToArray();
    }

    static (int code, string stdout, string stderr) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = QuantizeCommand.Invoke(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static void AssertBitsEqual(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(float.IsNaN(expected[i]) && float.IsNaN(actual[i])))
                Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i]),
                    $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [InlineData("mxfp4", "tetrajet", "nearest", "last", QuantFormat.MXFP4)]
    [InlineData("mxfp4", "ocp", "stochastic", "first", QuantFormat.MXFP4)]
    [InlineData("nvfp4", "tetrajet", "stochastic", "last", QuantFormat.NVFP4)]
    [InlineData("nvfp4-tensor", "tetrajet", "nearest", "first", QuantFormat.NVFP4Tensor)]
    [InlineData("mxfp8", "tetrajet", "stochastic", "last", QuantFormat.MXFP8)]
    public void Round_trip_equals_the_reference(string format, string rule, string rounding, string axis, QuantFormat f)
    {
        const int rows = 128, cols = 256;
        var x = RandomMatrix(rows, cols, 1);
        Npy.WriteMatrix(PathOf("in.npy"), x, rows, cols);
        // --scale-rule belongs to MXFP4 alone; the other formats refuse it.
        string[] ruleArgs = format == "mxfp4" ? ["--scale-rule", rule] : [];
        var (code, stdout, stderr) = Cli(["--format", format, .. ruleArgs, "--rounding", rounding, "--axis", axis,
            "--seed", "42", "--stream", "7", "--input", PathOf("in.npy"), "--output", PathOf("out.npy")]);
        Assert.True(code == 0, stderr);
        Assert.Equal("", stdout);
        var y = Npy.ReadMatrix(PathOf("out.npy"), out int r, out int c);
        Assert.Equal((rows, cols), (r, c));
        var spec = new QuantSpec(f, rounding == "stochastic" ? Rounding.Stochastic : Rounding.Nearest, rule == "ocp" ? ScaleRule.Ocp : ScaleRule.TetraJet);
        var expected = new float[x.Length];
        ReferenceQuantizer.Quantize(x, expected, rows, cols, axis == "first" ? BlockAxis.First : BlockAxis.Last, spec, 42, 7);
        AssertBitsEqual(expected, y);
        Assert.Equal(new[] { "in.npy", "out.npy" }, _dir.GetFiles().Select(fi => fi.Name).Order());
    }

    [Fact]
    public void Run_with_defaults_overwrites_an_existing_output()
    {
        var x = RandomMatrix(4, 64, 2);
        Npy.WriteMatrix(PathOf("in.npy"), x, 4, 64);
        File.WriteAllText(PathOf("out.npy"), "old");
        int code = QuantizeCommand.Run(new QuantizeArgs { Format = "mxfp4", Input = PathOf("in.npy"), Output = PathOf("out.npy") }, TextWriter.Null, TextWriter.Null);
        Assert.Equal(0, code);
        var expected = new float[x.Length];
        ReferenceQuantizer.Quantize(x, expected, 4, 64, BlockAxis.Last, new QuantSpec(QuantFormat.MXFP4));
        AssertBitsEqual(expected, Npy.ReadMatrix(PathOf("out.npy"), out _, out _));
    }

    [Fact]
    public void Hadamard_output_equals_the_reference_on_the_transformed_input()
    {
        const int rows = 256, cols = 64;
        var x = RandomMatrix(rows, cols, 3);
        Npy.WriteMatrix(PathOf("in.npy"), x, rows, cols);
        var (code, _, stderr) = Cli("--format", "nvfp4", "--rounding", "stochastic", "--axis", "first", "--hadamard",
            "--seed", "5", "--stream", "9", "--input", PathOf("in.npy"), "--output", PathOf("out.npy"));
        Assert.True(code == 0, stderr);
        var t = (float[])x.Clone();
        Hadamard.Apply(t, rows, cols, BlockAxis.First, Philox.HadamardSigns(5, 9));
        var expected = new float[x.Length];
        ReferenceQuantizer.Quantize(t, expected, rows, cols, BlockAxis.First, new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), 5, 9);
        AssertBitsEqual(expected, Npy.ReadMatrix(PathOf("out.npy"), out _, out _));
    }

    [Fact]
    public void Stats_is_one_json_line_with_plausible_values()
    {
        const int rows = 64, cols = 128;
        var x = RandomMatrix(rows, cols, 4);
        Array.Clear(x, 0, 32);                    // one all-zero block
        x[cols * 3 + 40] = float.NaN;             // one NaN block
        x[cols * 5 + 7] = 1000f;                  // above 6·2^7 = 768, the OCP rule clips it
        Npy.WriteMatrix(PathOf("in.npy"), x, rows, cols);
        var (code, stdout, stderr) = Cli("--format", "mxfp4", "--scale-rule", "ocp", "--stats", "--input", PathOf("in.npy"), "--output", PathOf("out.npy"));
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        using var json = JsonDocument.Parse(lines[0]);
        var root = json.RootElement;
        Assert.Equal("mxfp4", root.GetProperty("format").GetString());
        Assert.Equal(new[] { rows, cols }, root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(rows * cols / 32, root.GetProperty("blocks").GetInt64());
        double rmse = root.GetProperty("rmse").GetDouble(), maxErr = root.GetProperty("max_abs_error").GetDouble();
        Assert.InRange(rmse, 1e-6, 10.0);
        Assert.InRange(maxErr, rmse, 1000.0);
        double sat = root.GetProperty("saturated_fraction").GetDouble();
        Assert.InRange(sat, 1.0 / (rows * cols), 0.2);
        Assert.Equal(1, root.GetProperty("zero_blocks").GetInt64());
        Assert.Equal(1, root.GetProperty("nan_blocks").GetInt64());

        // The TetraJet rule never saturates: amax ≤ 6·2^s by construction.
        (code, stdout, _) = Cli("--format", "mxfp4", "--stats", "--input", PathOf("in.npy"), "--output", PathOf("out.npy"));
        Assert.Equal(0, code);
        using var json2 = JsonDocument.Parse(stdout);
        Assert.Equal(0.0, json2.RootElement.GetProperty("saturated_fraction").GetDouble());
    }

    [Fact]
    public void Stats_stay_valid_json_when_an_error_is_infinite()
    {
        const int rows = 4, cols = 64;
        var x = RandomMatrix(rows, cols, 5);
        for (int i = 0; i < 32; i += 3) x[i] = 3.0e38f;   // near FP32's limit: the block's scale times 6 overflows to ∞
        Npy.WriteMatrix(PathOf("in.npy"), x, rows, cols);
        var (code, stdout, stderr) = Cli("--format", "mxfp4", "--stats", "--input", PathOf("in.npy"), "--output", PathOf("out.npy"));
        Assert.True(code == 0, stderr);
        var y = Npy.ReadMatrix(PathOf("out.npy"), out _, out _);
        Assert.Contains(y, float.IsPositiveInfinity);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("Infinity", json.RootElement.GetProperty("rmse").GetString());
        Assert.Equal("Infinity", json.RootElement.GetProperty("max_abs_error").GetString());
        var options = new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
        Assert.Equal(double.PositiveInfinity, json.RootElement.GetProperty("rmse").Deserialize<double>(options));
        Assert.Equal("tetrajet", json.RootElement.GetProperty("scale_rule").GetString());
    }

    [Fact]
    public void The_readme_example_runs_on_the_shipped_input()
    {
        // README: quantize --format nvfp4 --input data/examples/activations.npy --output q.npy --stats
        var input = Path.Combine(Data.DataFiles.Shipped("examples"), "activations.npy");
        var (code, stdout, stderr) = Cli("--format", "nvfp4", "--input", input, "--output", PathOf("q.npy"), "--stats");
        Assert.True(code == 0, stderr);
        var x = Npy.ReadMatrix(input, out int rows, out int cols);
        Assert.Equal((64, 256), (rows, cols));
        var expected = new float[x.Length];
        ReferenceQuantizer.Quantize(x, expected, rows, cols, BlockAxis.Last, new QuantSpec(QuantFormat.NVFP4));
        AssertBitsEqual(expected, Npy.ReadMatrix(PathOf("q.npy"), out _, out _));
        using var json = JsonDocument.Parse(stdout);
        Assert.InRange(json.RootElement.GetProperty("rmse").GetDouble(), 0.01, 1.0);
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("scale_rule").ValueKind);
    }

    [Fact]
    public void The_output_may_not_be_the_input()
    {
        var x = RandomMatrix(4, 64, 6);
        Npy.WriteMatrix(PathOf("in.npy"), x, 4, 64);
        var before = File.ReadAllBytes(PathOf("in.npy"));
        File.CreateSymbolicLink(PathOf("link.npy"), PathOf("in.npy"));
        foreach (var output in new[] { PathOf("in.npy"), Path.Combine(_dir.FullName, ".", "in.npy"), PathOf("link.npy") })
        {
            var (code, stdout, stderr) = Cli("--format", "mxfp4", "--input", PathOf("in.npy"), "--output", output);
            AssertOneLineError(code, stdout, stderr);
            Assert.Contains("is the input file", stderr);
            Assert.Equal(before, File.ReadAllBytes(PathOf("in.npy")));
        }
    }

    [Theory]
    [InlineData("nvfp4", "tetrajet")]
    [InlineData("nvfp4-tensor", "ocp")]
    [InlineData("mxfp8", "ocp")]
    public void A_scale_rule_with_a_format_that_has_none_is_refused(string format, string rule)
    {
        Npy.WriteMatrix(PathOf("in.npy"), new float[128 * 128], 128, 128);
        var (code, stdout, stderr) = Cli("--format", format, "--scale-rule", rule, "--input", PathOf("in.npy"), "--output", PathOf("out.npy"));
        AssertOneLineError(code, stdout, stderr);
        Assert.Contains("--scale-rule applies to --format mxfp4 only", stderr);
        Assert.False(File.Exists(PathOf("out.npy")));
    }

    [Fact]
    public void Arrays_of_more_than_2_to_the_29_elements_load_and_save()
    {
        // 2^29 + 64 floats: their bytes do not fit one span. A sparse file, so the disk holds only the ends.
        const int rows = (1 << 23) + 1, cols = 64;
        long count = (long)rows * cols;
        var path = PathOf("big.npy");
        using (var s = File.Create(path))
        {
            string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
            string header = dict + new string(' ', 64 - (10 + dict.Length + 1) % 64) + "\n";
            s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
            s.Write(BitConverter.GetBytes((ushort)header.Length));
            s.Write(Encoding.ASCII.GetBytes(header));
            long end = s.Position + 4 * count;
            s.SetLength(end);
            s.Position = end - 4;
            s.Write(BitConverter.GetBytes(1.5f));
        }
        var data = Npy.ReadMatrix(path, out int r, out int c);
        Assert.Equal((rows, cols), (r, c));
        Assert.Equal(count, data.LongLength);
        Assert.Equal(1.5f, data[^1]);
        Assert.Equal(0f, data[1 << 29]);
        File.Delete(path);

        // Writing goes through a stream that keeps only its length and last bytes: no second 2 GiB on disk.
        data[^2] = -2f;
        var sink = new TailStream();
        Npy.WriteMatrix(sink, data, rows, cols);
        Assert.Equal(4 * count, sink.Length - sink.HeaderLength);
        Assert.Equal([-2f, 1.5f], [BitConverter.ToSingle(sink.Tail, 0), BitConverter.ToSingle(sink.Tail, 4)]);
    }

    /// <summary>A write-only stream that counts bytes and keeps the header (up to its newline) and the last 8 bytes.</summary>
    sealed class TailStream : Stream
    {
        long _length;
        public long HeaderLength { get; private set; }
        public byte[] Tail { get; } = new byte[8];
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (HeaderLength == 0 && buffer.IndexOf((byte)'\n') is int nl and >= 0) HeaderLength = _length + nl + 1;
            _length += buffer.Length;
            if (buffer.Length >= 8) buffer[^8..].CopyTo(Tail);
            else
            {
                var joined = Tail.Concat(buffer.ToArray()).ToArray();
                joined.AsSpan(joined.Length - 8).CopyTo(Tail);
            }
        }
    }

    public static TheoryData<string> BadCases() => new()
    {
        "missing file", "garbage file", "empty file", "dtype <f8", "fortran order", "1-D", "3-D", "truncated data",
        "cols not a block multiple", "rows not a block multiple (first axis)", "unknown format", "unknown rounding",
        "unknown option", "bad seed", "missing format", "missing input option",
    };

    [Theory]
    [MemberData(nameof(BadCases))]
    public void Bad_input_gives_one_stderr_line_exit_2_and_leaves_the_output_alone(string badCase)
    {
        string input = PathOf("in.npy");
        var args = new List<string> { "--format", "mxfp4", "--input", input };
        switch (badCase)
        {
            case "missing file": input = PathOf("nope.npy"); args[3] = input; break;
            case "garbage file": File.WriteAllText(input, "this is not an npy file at all, just words"); break;
            case "empty file": File.WriteAllBytes(input, []); break;
            case "dtype <f8": RawNpy(input, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 32), }", 4 * 32 * 8); break;
            case "fortran order": RawNpy(input, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 32), }", 4 * 32 * 4); break;
            case "1-D": RawNpy(input, "{'descr': '<f4', 'fortran_order': False, 'shape': (32,), }", 32 * 4); break;
            case "3-D": RawNpy(input, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 32), }", 128 * 4); break;
            case "truncated data": RawNpy(input, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 32), }", 100); break;
            case "cols not a block multiple": Npy.WriteMatrix(input, new float[4 * 40], 4, 40); break;
            case "rows not a block multiple (first axis)": Npy.WriteMatrix(input, new float[40 * 32], 40, 32); args.AddRange(["--axis", "first"]); break;
            case "unknown format": Npy.WriteMatrix(input, new float[128], 4, 32); args[1] = "fp3"; break;
            case "unknown rounding": Npy.WriteMatrix(input, new float[128], 4, 32); args.AddRange(["--rounding", "up"]); break;
            case "unknown option": Npy.WriteMatrix(input, new float[128], 4, 32); args.Add("--frobnicate"); break;
            case "bad seed": Npy.WriteMatrix(input, new float[128], 4, 32); args.AddRange(["--seed", "-1x"]); break;
            case "missing format": Npy.WriteMatrix(input, new float[128], 4, 32); args.RemoveRange(0, 2); break;
            case "missing input option": Npy.WriteMatrix(input, new float[128], 4, 32); args.RemoveRange(2, 2); break;
            default: throw new ArgumentException(badCase);
        }

        // A pre-existing output keeps its bytes and its modification time.
        string existing = PathOf("existing.npy");
        File.WriteAllBytes(existing, [1, 2, 3]);
        var stamp = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(existing, stamp);
        var (code, stdout, stderr) = Cli([.. args, "--output", existing]);
        AssertOneLineError(code, stdout, stderr);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(existing));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(existing));

        // A missing output is not created, and nothing else is left behind.
        var before = _dir.GetFiles().Select(f => f.Name).Order().ToArray();
        (code, stdout, stderr) = Cli([.. args, "--output", PathOf("fresh.npy")]);
        AssertOneLineError(code, stdout, stderr);
        Assert.False(File.Exists(PathOf("fresh.npy")));
        Assert.Equal(before, _dir.GetFiles().Select(f => f.Name).Order());
    }

    static void AssertOneLineError(int code, string stdout, string stderr)
    {
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}: {stderr}");
        Assert.StartsWith("tetrajet quantize: ", lines[0]);
    }

    static void RawNpy(string path, string dict, int dataBytes)
    {
        string header = dict + new string(' ', 64 - (10 + dict.Length + 1) % 64) + "\n";
        using var s = File.Create(path);
        s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        s.Write(BitConverter.GetBytes((ushort)header.Length));
        s.Write(Encoding.ASCII.GetBytes(header));
        s.Write(new byte[dataBytes]);
    }
}
