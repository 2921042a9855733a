using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TetraJet.IO;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Export;

/// <summary>
/// The inference export read back by a loader written from docs/EXPORT.md alone (its own JSON parsing and its own
/// E2M1, E8M0 and E4M3 decoding): every quantized weight is Q2(W) bit for bit — the scalar reference quantizer's
/// output, and the weight the layer's own forward uses.
/// </summary>
public class InferenceExportTests
{
    sealed class TwoLayers : nn.Module<Tensor, Tensor>
    {
        public readonly QLinear fc1, fc2;
        readonly LayerNorm norm;

        public TwoLayers(Recipe recipe) : base(nameof(TwoLayers))
        {
            fc1 = new QLinear(256, 384, recipe, name: "fc1");
            norm = nn.LayerNorm(384);
            fc2 = new QLinear(384, 128, recipe, bias: false, name: "fc2");
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc2.call(norm.call(fc1.call(x)));
    }

    public static TheoryData<string> Cases => new() { "tetrajet", "microscaling", "tetrajet+qema", "tetrajet-v2", "nvidia-nvfp4", "tetrajet-v2+outcontrol", "tetrajet-v2+bf16", "bf16", "custom-mxfp8", "custom-nvfp4-tensor" };

    static Recipe RecipeOf(string name) => name switch
    {
        "tetrajet+qema" => Recipe.Get(RecipeId.TetraJet) with { QEma = true },
        "tetrajet-v2+outcontrol" => Recipe.Get(RecipeId.TetraJetV2) with { OutControl = true, OutControlStart = 0, OutControlWindow = 1 },
        "tetrajet-v2+bf16" => Recipe.Get(RecipeId.TetraJetV2),
        // Custom recipes whose Q2 is MXFP8 or per-tensor NVFP4 without tiles: the remaining storage forms.
        "custom-mxfp8" => Recipe.Get(RecipeId.TetraJet) with { Name = "custom-mxfp8", Q2 = new QuantizerSlot(new QuantSpec(QuantFormat.MXFP8)) },
        "custom-nvfp4-tensor" => Recipe.Get(RecipeId.TetraJet) with { Name = "custom-nvfp4-tensor", Q2 = new QuantizerSlot(new QuantSpec(QuantFormat.NVFP4Tensor)) },
        _ => Recipe.Parse(name),
    };

    /// <summary>A model whose weights have heavy tails, an all-zero block, and for the options their state engaged.</summary>
    static TwoLayers Build(string name)
    {
        manual_seed(11);
        var model = new TwoLayers(RecipeOf(name));
        using (no_grad())
            foreach (var layer in new[] { model.fc1, model.fc2 })
            {
                layer.weight.mul_(randn_like(layer.weight).exp());
                layer.weight[3, ..32].zero_();
                layer.weight[5, 64..96].mul_(1e4f);
            }
        if (name == "tetrajet+qema")
        {
            // Twelve EMA steps while the weights drift: past the warm-up, so Q2 rounds EMA-guided.
            for (int s = 1; s <= 12; s++)
            {
                using (no_grad()) foreach (var p in model.parameters()) p.add_(randn_like(p).mul(0.01f));
                model.UpdateQuantizationState(s, 100);
            }
            Assert.True(model.fc1.EmaSteps >= QLinear.EmaWarmupSteps);
        }
        if (name == "tetrajet-v2+outcontrol")
        {
            // One training forward collects channel norms with a few loud channels; the step after fixes the outliers.
            var x = randn(64, 256);
            x[.., 7].mul_(50f);
            x[.., 100].mul_(30f);
            model.call(x).sum().backward();
            model.UpdateQuantizationState(1, 100);
            Assert.NotNull(model.fc1.OutControlChannels);
        }
        if (name == "tetrajet-v2+bf16") model.to(ScalarType.BFloat16);
        return model;
    }

    // ---- an independent reader of the file ----

    static readonly float[] E2M1Values = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];

    static float E2M1(int code) => (code & 8) != 0 ? -E2M1Values[code & 7] : E2M1Values[code & 7];

    static float E8M0(byte b) => b == 255 ? float.NaN : (float)Math.ScaleB(1.0, b - 127);

    /// <summary>OCP E4M3 (FN): bias 7, subnormals m/8·2^-6, S.1111.111 is NaN, no infinities.</summary>
    static float E4M3(byte b)
    {
        int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
        if (e == 15 && m == 7) return float.NaN;
        double v = e == 0 ? m / 8.0 * Math.ScaleB(1.0, -6) : (1 + m / 8.0) * Math.ScaleB(1.0, e - 7);
        return (float)(sign == 1 ? -v : v);
    }

    sealed record Entry(string DType, long[] Shape, byte[] Data);

    static (Dictionary<string, Entry> Tensors, Dictionary<string, string> Metadata) ReadFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var tensors = new Dictionary<string, Entry>();
        var metadata = new Dictionary<string, string>();
        long expectedBegin = 0;
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            Assert.Equal(expectedBegin, offsets[0]);   // the writer lays tensors out in header order, back to back
            expectedBegin = offsets[1];
            tensors[p.Name] = new Entry(p.Value.GetProperty("dtype").GetString()!, p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                bytes[(int)(8 + n + offsets[0])..(int)(8 + n + offsets[1])]);
        }
        Assert.Equal(bytes.Length - 8 - n, expectedBegin);
        return (tensors, metadata);
    }

    static int Code(byte[] packed, long k) => (packed[k / 2] >> (k % 2 == 0 ? 0 : 4)) & 15;

    /// <summary>W [rows, cols] from the codes and scales of one layer, as docs/EXPORT.md states the formulas.</summary>
    static float[] Decode(Dictionary<string, Entry> t, string prefix, string format, int rows, int cols)
    {
        var codes = t[prefix + ".codes"].Data;
        var scales = t[prefix + ".scales"].Data;
        var outer = t.TryGetValue(prefix + ".outer_scales", out var o) ? Enumerable.Range(0, o.Data.Length / 4).Select(i => BitConverter.ToSingle(o.Data, 4 * i)).ToArray() : [];
        var w = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                long i = (long)r * cols + c;
                w[i] = format switch
                {
                    "mxfp4" => E2M1(Code(codes, i)) * E8M0(scales[r * ((cols + 31) / 32) + c / 32]),
                    "nvfp4" => E2M1(Code(codes, i)) * (E4M3(scales[r * ((cols + 15) / 16) + c / 16]) * outer[r * ((cols + 127) / 128) + c / 128]),
                    "nvfp4-tensor-16x16" => E2M1(Code(codes, i)) * (E4M3(scales[r / 16 * (cols / 16) + c / 16]) * outer[0]),
                    "nvfp4-tensor" => E2M1(Code(codes, i)) * (E4M3(scales[r * (cols / 16) + c / 16]) * outer[0]),
                    "mxfp8" => E4M3(codes[i]) * E8M0(scales[r * (cols / 32) + c / 32]),
                    _ => throw new InvalidOperationException(format),
                };
            }
        return w;
    }

    static float[] Floats(Tensor t) => t.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    static float[] Reference(float[] w, int rows, int cols, QuantSpec spec, float[]? ema = null, bool pad = false)
    {
        var y = new float[w.Length];
        ReferenceQuantizer.Quantize(w, y, rows, cols, BlockAxis.Last, spec, ema: ema, padBlockAxis: pad);
        return y;
    }

    static void AssertEntry(Entry e, string dtype, params long[] shape)
    {
        Assert.Equal(dtype, e.DType);
        Assert.Equal(shape, e.Shape);
    }

    static void AssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} (row {i / 384}) is {actual[i]:R}, expected {expected[i]:R}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_file_dequantizes_to_exactly_the_forward_weight(string name)
    {
        using var model = Build(name);
        var path = Path.Combine(Path.GetTempPath(), $"tetrajet-export-{Guid.NewGuid():N}.safetensors");
        try
        {
            InferenceExport.Save(model, path, new Dictionary<string, string> { ["tetrajet.note"] = "test" });
            var (t, meta) = ReadFile(path);
            var recipe = model.fc1.Recipe;
            Assert.Equal(InferenceExport.LayoutVersion, meta["tetrajet.export"]);
            Assert.Equal("test", meta["tetrajet.note"]);
            Assert.Contains("docs/EXPORT.md", meta["tetrajet.layout"]);
            Assert.StartsWith(recipe.Q2.IsQuantized ? recipe.Name : "BF16", meta["tetrajet.recipe"]);
            // Training state stays behind.
            Assert.DoesNotContain(t.Keys, k => k.Contains("ema_weight") || k.Contains("outcontrol") || k.Contains("outlier_mask"));
            // Everything that is not a quantized weight is BF16: the bias, the norm.
            Assert.Equal("BF16", t["fc1.bias"].DType);
            Assert.Equal("BF16", t["norm.weight"].DType);
            var bias = model.fc1.bias!.detach().to(ScalarType.BFloat16).contiguous();
            Assert.Equal(bias.bytes.ToArray(), t["fc1.bias"].Data);

            var loaded = InferenceExport.LoadDequantized(path);
            foreach (var (layer, prefix, k, n) in new[] { (model.fc1, "fc1.weight", 256, 384), (model.fc2, "fc2.weight", 384, 128) })
            {
                var w = Floats(layer.weight);
                if (!recipe.Q2.IsQuantized)
                {
                    Assert.Equal("BF16", t[prefix].DType);
                    Assert.Equal(layer.weight.detach().to(ScalarType.BFloat16).contiguous().bytes.ToArray(), t[prefix].Data);
                    continue;
                }
                Assert.False(t.ContainsKey(prefix));
                using var layers = JsonDocument.Parse(meta["tetrajet.layers"]);
                var format = layers.RootElement.GetProperty(prefix).GetProperty("format").GetString()!;
                var spec = recipe.Q2.Spec;
                float[]? ema = null;
                if (recipe.QEma)
                {
                    spec = spec with { Rounding = Rounding.EmaGuided };
                    ema = Floats(layer.EmaWeight!);
                }

                float[] expected, decoded;
                if (layer.OutControlChannels is { } parts)
                {
                    int[] Indices(Entry e)
                    {
                        Assert.Equal("I64", e.DType);
                        return [.. Enumerable.Range(0, e.Data.Length / 8).Select(i => (int)BitConverter.ToInt64(e.Data, 8 * i))];
                    }
                    var channels = Indices(t[prefix + ".outlier_channels"]);
                    var regular = Indices(t[prefix + ".fp4_channels"]);
                    // Each part in the layer's gathered order, largest norm sum first.
                    Assert.Equal(parts.Outliers.data<long>().Select(c => (int)c), channels);
                    Assert.Equal(parts.Fp4.data<long>().Select(c => (int)c), regular);
                    if (layer == model.fc1) Assert.Equal(7, channels[0]);   // the loudest input channel
                    float[] Columns(float[] src, int[] cols) => [.. Enumerable.Range(0, n).SelectMany(r => cols.Select(c => src[r * k + c]))];
                    var mainRef = Reference(Columns(w, regular), n, regular.Length, spec, ema is null ? null : Columns(ema, regular));
                    var fp8Ref = Reference(Columns(w, channels), n, channels.Length, new QuantSpec(QuantFormat.MXFP8));
                    expected = new float[n * k];
                    decoded = new float[n * k];
                    var main = Decode(t, prefix, format, n, regular.Length);
                    var codes = t[prefix + ".outlier_codes"];
                    var scales = t[prefix + ".outlier_scales"];
                    AssertEntry(codes, "F8_E4M3", n, channels.Length);
                    AssertEntry(scales, "U8", n, channels.Length / 32);
                    for (int r = 0; r < n; r++)
                    {
                        for (int j = 0; j < regular.Length; j++)
                        {
                            expected[r * k + regular[j]] = mainRef[r * regular.Length + j];
                            decoded[r * k + regular[j]] = main[r * regular.Length + j];
                        }
                        for (int j = 0; j < channels.Length; j++)
                        {
                            expected[r * k + channels[j]] = fp8Ref[r * channels.Length + j];
                            decoded[r * k + channels[j]] = E4M3(codes.Data[r * channels.Length + j]) * E8M0(scales.Data[r * (channels.Length / 32) + j / 32]);
                        }
                    }
                }
                else
                {
                    expected = Reference(w, n, k, spec, ema);
                    decoded = Decode(t, prefix, format, n, k);
                    // Shapes and dtypes as docs/EXPORT.md lists them.
                    if (format == "mxfp8") AssertEntry(t[prefix + ".codes"], "F8_E4M3", n, k);
                    else AssertEntry(t[prefix + ".codes"], "U8", n, k / 2);
                    var scales = t[prefix + ".scales"];
                    switch (format)
                    {
                        case "mxfp8": AssertEntry(scales, "U8", n, k / 32); break;
                        case "nvfp4-tensor":
                            AssertEntry(scales, "F8_E4M3", n, k / 16);
                            AssertEntry(t[prefix + ".outer_scales"], "F32", 1);
                            break;
                        case "mxfp4": AssertEntry(scales, "U8", n, k / 32); break;
                        case "nvfp4":
                            AssertEntry(scales, "F8_E4M3", n, k / 16);
                            AssertEntry(t[prefix + ".outer_scales"], "F32", n, k / 128);
                            break;
                        case "nvfp4-tensor-16x16":
                            AssertEntry(scales, "F8_E4M3", n / 16, k / 16);
                            AssertEntry(t[prefix + ".outer_scales"], "F32", 1);
                            break;
                        default: Assert.Fail($"unexpected format {format}"); break;
                    }
                }
                if (layer.weight.dtype == ScalarType.BFloat16)
                {
                    // A BF16 layer's Q2(W) is the FP32 result rounded to BF16, as Quantizer returns it.
                    expected = Floats(tensor(expected).to(ScalarType.BFloat16));
                    decoded = Floats(tensor(decoded).to(ScalarType.BFloat16));
                }
                AssertBits(expected, decoded, $"{name} {prefix}: file against the reference quantizer");
                AssertBits(expected, Floats(loaded[prefix]), $"{name} {prefix}: InferenceExport.LoadDequantized");

                // The weight the layer's forward multiplies by, as the plan hands it to the GEMM (evaluation: no state moves).
                Tensor? wq = null;
                layer.eval();
                layer.OperandProbe = (slot, q) => { if (slot == 2) wq = q.detach().clone().DetachFromDisposeScope(); };
                using (no_grad()) layer.call(randn(8, k).to(layer.weight.dtype)).Dispose();
                layer.OperandProbe = null;
                layer.train();
                AssertBits(expected, Floats(wq!), $"{name} {prefix}: the layer's own Q2(W)");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Safetensors_round_trip_and_damage()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tetrajet-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            var a = tensor(new float[] { 1.5f, -2f, 3.25f, 0f, float.NegativeInfinity, 7f }, [2, 3]);
            var b = tensor(new long[] { 4, -5 });
            SafeTensors.Write(path, [("a", SafeTensor.From(a)), ("b.c", SafeTensor.From(b)), ("bf", SafeTensor.From(a.to(ScalarType.BFloat16)))],
                new Dictionary<string, string> { ["k"] = "v" });
            var (t, meta) = SafeTensors.Read(path);
            Assert.Equal("v", meta["k"]);
            Assert.Equal(a.data<float>().ToArray(), t["a"].ToTensor().data<float>().ToArray());
            Assert.Equal([2L, 3L], t["a"].Shape);
            Assert.Equal(new long[] { 4, -5 }, t["b.c"].ToTensor().data<long>().ToArray());
            Assert.Equal("BF16", t["bf"].DType);

            // The header is JSON padded with spaces to 8 bytes, as other readers expect.
            var bytes = File.ReadAllBytes(path);
            int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            Assert.Equal(0, n % 8);
            Assert.StartsWith("{", Encoding.UTF8.GetString(bytes, 8, n));

            File.WriteAllBytes(path, bytes[..^4]);
            Assert.Contains("spans bytes", Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(path)).Message);
            File.WriteAllBytes(path, [.. bytes, 0, 0]);
            Assert.Contains("after the last tensor", Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(path)).Message);
            File.WriteAllBytes(path, bytes[..6]);
            Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
