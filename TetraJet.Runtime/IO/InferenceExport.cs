using System.Text.Json.Nodes;
using TetraJet.Formats;
using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.IO;

/// <summary>
/// Writes a trained model for inference as one safetensors file (docs/EXPORT.md): each quantized linear's forward
/// weight Q2(W) in storage form — FP4 codes two per byte, element 2i in the low nibble, with the format's scales:
/// MXFP4 E8M0 bytes per 32 along K (the OCP MX layout), NVFP4 E4M3 per 16 plus FP32 per 128 or per tensor —
/// and every other parameter in BF16, with a <c>__metadata__</c> entry naming the recipe and the layout.
/// <see cref="LoadDequantized"/> reads such a file back; its weights are Q2(W) bit for bit.
/// </summary>
/// <remarks>
/// Q2(W) is the weight the layer's own forward uses: RTN under the recipe's Q2 spec, EMA-guided once Q-EMA has
/// warmed up, with OutControl's outlier input channels in MXFP8. The packing is the reference quantizer's
/// (<see cref="Quantizer.QuantizePacked"/>), which every fast path matches bit for bit; it runs once per layer
/// on the CPU. The quantization state that training needs (EMA weights, OsciReset accumulators, OutControl
/// norms) is not exported.
/// </remarks>
public static class InferenceExport
{
    /// <summary>Layout version written to the metadata as <c>tetrajet.export</c>.</summary>
    public const string LayoutVersion = "1";

    public const string RecipeKey = "tetrajet.recipe", LayoutKey = "tetrajet.layout", LayersKey = "tetrajet.layers", VersionKey = "tetrajet.export";

    /// <summary>A short statement of the layout, written to the metadata as <c>tetrajet.layout</c>.</summary>
    public const string LayoutSummary =
        "W[N,K] of each quantized linear as <name>.codes (U8 [N,K/2], E2M1 codes, element 2i in the low nibble, sign in bit 3) " +
        "and <name>.scales: MXFP4 U8 E8M0 [N,K/32] (OCP MX: value 2^(b-127)); NVFP4 F8_E4M3 [N,K/16] with <name>.outer_scales " +
        "F32 [N,K/128] (TetraJet-v2) or per tensor F32 [1] with 16x16 tiles, scales [N/16,K/16] (NVIDIA); W = E2M1 * fp32(inner * outer). " +
        "OutControl: the codes cover the regular input channels; <name>.outlier_channels (I64) in MXFP8 (<name>.outlier_codes F8_E4M3, " +
        "<name>.outlier_scales U8 E8M0). Everything else BF16. docs/EXPORT.md";

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> (through a temporary file renamed into place).
    /// <paramref name="metadata"/> adds entries (e.g. the run and step); <paramref name="recipe"/> names the recipe,
    /// by default the distinct recipes of the quantized layers.
    /// </summary>
    public static void Save(nn.Module model, string path, IReadOnlyDictionary<string, string>? metadata = null, string? recipe = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (tensors, layers) = Collect(model);
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            [VersionKey] = LayoutVersion,
            [RecipeKey] = recipe ?? RecipeNames(model),
            [LayoutKey] = LayoutSummary,
            [LayersKey] = layers.ToJsonString(),
        };
        SafeTensors.Write(path, tensors, meta);
    }

    static string RecipeNames(nn.Module model)
    {
        var names = model.QuantizedLinears().Select(l => l.Layer.Recipe).Where(r => r.Q2.IsQuantized).Select(RecipeLabel).Distinct().ToList();
        return names.Count == 0 ? "BF16" : string.Join("; ", names);
    }

    /// <summary>The recipe's name with its options as <see cref="Recipe.Describe"/> states them, e.g. <c>TetraJet (Q-EMA (β = 0.998))</c>.</summary>
    public static string RecipeLabel(Recipe recipe)
    {
        var line = recipe.Describe().Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("options:", StringComparison.Ordinal));
        return line is null or "options: none" ? recipe.Name : $"{recipe.Name} ({line["options:".Length..].Trim()})";
    }

    /// <summary>The tensors of the file, in state-dict order, and the per-layer description that goes to the metadata.</summary>
    public static (List<(string Name, SafeTensor Tensor)> Tensors, JsonObject Layers) Collect(nn.Module model)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var quantized = model.QuantizedLinears().Where(l => l.Layer.Recipe.Q2.IsQuantized)
            .ToDictionary(l => Prefix(l.Path) + "weight", l => l.Layer);
        // Training state of the layers (every buffer a QLinear lists: EMA, OsciReset, OutControl, counters), not needed to run them.
        var stateBuffers = model.QuantizedLinears()
            .SelectMany(l => l.Layer.named_buffers().Select(b => Prefix(l.Path) + b.name)).ToHashSet();
        var tensors = new List<(string, SafeTensor)>();
        var layers = new JsonObject();
        foreach (var (name, value) in model.state_dict())
        {
            if (stateBuffers.Contains(name)) continue;
            if (quantized.TryGetValue(name, out var layer))
            {
                layers[name] = AddWeight(tensors, name, layer);
                continue;
            }
            var v = value.detach();
            tensors.Add((name, SafeTensor.From(v.is_floating_point() ? v.to(ScalarType.BFloat16) : v)));
        }
        return (tensors, layers);
    }

    static string Prefix(string path) => path.Length == 0 ? "" : path + ".";

    /// <summary>Packs Q2(W) of one layer into the file's tensors and returns its description.</summary>
    static JsonObject AddWeight(List<(string, SafeTensor)> tensors, string name, QLinear layer)
    {
        var spec = layer.Recipe.Q2.Spec;
        Tensor? ema = null;
        // As the layer's plan chooses Q2: EMA-guided once Q-EMA has taken its warm-up steps.
        if (layer.EmaReady)
        {
            spec = spec with { Rounding = Rounding.EmaGuided };
            ema = layer.EmaWeight!.detach().cpu();
        }
        var w = layer.weight.detach().cpu();
        var info = new JsonObject
        {
            ["format"] = FormatName(spec),
            ["rounding"] = spec.Rounding == Rounding.EmaGuided ? "EMA" : "RTN",
            ["shape"] = new JsonArray(layer.OutFeatures, layer.InFeatures),
            ["dtype"] = w.dtype == ScalarType.BFloat16 ? "BF16" : "F32",
        };
        if (spec.Format == QuantFormat.MXFP4) info["scale_rule"] = spec.ScaleRule == ScaleRule.Ocp ? "ocp" : "tetrajet";
        if (layer.OutControlChannels is { } channels)
        {
            // OutControl: the FP4 part's channels gathered largest norm sum first, in the slot's format (its blocks follow
            // that order, as the forward quantizes them); the outlier channels likewise, in MXFP8.
            var fp4 = channels.Fp4.cpu();
            var outliers = channels.Outliers.cpu();
            tensors.Add((name + ".fp4_channels", SafeTensor.From(fp4.to(ScalarType.Int64))));
            AddPacked(tensors, name, Quantizer.QuantizePacked(OutControl.Gather(w, fp4), spec, BlockAxis.Last, ema: ema is null ? null : OutControl.Gather(ema, fp4)));
            tensors.Add((name + ".outlier_channels", SafeTensor.From(outliers.to(ScalarType.Int64))));
            AddPacked(tensors, name + ".outlier", Quantizer.QuantizePacked(OutControl.Gather(w, outliers), OutControl.OutlierSpec), codesName: "_codes", scalesName: "_scales");
            info["outliers"] = new JsonObject { ["format"] = "mxfp8", ["channels"] = outliers.numel() };
        }
        else AddPacked(tensors, name, Quantizer.QuantizePacked(w, spec, BlockAxis.Last, ema: ema));
        return info;
    }

    /// <summary>Adds the tensors of <paramref name="p"/> (which it disposes) under <paramref name="name"/>.</summary>
    static void AddPacked(List<(string, SafeTensor)> tensors, string name, PackedTensor p, string codesName = ".codes", string scalesName = ".scales")
    {
        using var owned = p;
        bool fp8 = p.Spec.Format == QuantFormat.MXFP8;
        long[] codeShape = fp8 ? [p.Rows, p.Cols] : [p.Rows, (p.Cols + 1) / 2];
        // FP4 rows of odd length would share a byte between rows; every format's block is even, so rows never do.
        if (!fp8 && p.Cols % 2 != 0) throw new ArgumentException($"{name}: {p.Cols} columns do not pack two per byte");
        tensors.Add((name + codesName, new SafeTensor(fp8 ? "F8_E4M3" : "U8", codeShape, p.Codes.contiguous().data<byte>().ToArray())));
        bool mx = p.Spec.Format is QuantFormat.MXFP4 or QuantFormat.MXFP8;
        long[] scaleShape = p.Spec.Tile16 ? [p.Rows / 16, p.Cols / 16] : [p.Rows, (p.Cols + p.Spec.Block - 1) / p.Spec.Block];
        tensors.Add((name + scalesName, new SafeTensor(mx ? "U8" : "F8_E4M3", scaleShape, p.Scales.contiguous().data<byte>().ToArray())));
        if (p.OuterScales.numel() == 0) return;
        long[] outerShape = p.Spec.Format == QuantFormat.NVFP4 ? [p.Rows, (p.Cols + 127) / 128] : [1];
        var outerScales = p.OuterScales.contiguous().data<float>().ToArray();
        var outer = new byte[outerScales.Length * 4];
        Buffer.BlockCopy(outerScales, 0, outer, 0, outer.Length);   // little-endian on every platform .NET runs here
        tensors.Add((name + ".outer_scales", new SafeTensor("F32", outerShape, outer)));
    }

    static string FormatName(QuantSpec spec) => spec.Format switch
    {
        QuantFormat.MXFP4 => "mxfp4",
        QuantFormat.MXFP8 => "mxfp8",
        QuantFormat.NVFP4 => "nvfp4",
        QuantFormat.NVFP4Tensor => spec.Tile16 ? "nvfp4-tensor-16x16" : "nvfp4-tensor",
        _ => throw new ArgumentException($"{spec} has no storage form"),
    };

    /// <summary>
    /// Reads a file written by <see cref="Save"/>: each quantized weight dequantized to Q2(W) (float32, or bfloat16
    /// where the layer's weight was), every other tensor as stored.
    /// </summary>
    public static Dictionary<string, Tensor> LoadDequantized(string path)
    {
        var (tensors, metadata) = SafeTensors.Read(path);
        if (!metadata.TryGetValue(LayersKey, out var layersJson) || metadata.GetValueOrDefault(VersionKey) != LayoutVersion)
            throw new SafeTensorsFormatException($"{path} was not written by TetraJet's export (layout {LayoutVersion})");
        var layers = JsonNode.Parse(layersJson)!.AsObject();
        var parts = new HashSet<string>();
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, node) in layers)
        {
            var info = node!.AsObject();
            long n = info["shape"]![0]!.GetValue<long>(), k = info["shape"]![1]!.GetValue<long>();
            var w = new float[n * k];
            var format = info["format"]!.GetValue<string>();
            SafeTensor Part(string suffix)
            {
                parts.Add(name + suffix);
                return tensors.GetValueOrDefault(name + suffix) ?? throw new SafeTensorsFormatException($"{path}: '{name}{suffix}' is missing");
            }
            if (info["outliers"] is JsonObject)
            {
                var channels = Part(".outlier_channels").ToTensor().data<long>().ToArray();
                var regular = Part(".fp4_channels").ToTensor().data<long>().ToArray();
                var main = Dequantize(format, Part(".codes"), Part(".scales"), format.StartsWith("nvfp4") ? Part(".outer_scales") : null, n, regular.Length);
                var fp8 = Dequantize("mxfp8", Part(".outlier_codes"), Part(".outlier_scales"), null, n, channels.Length);
                for (long r = 0; r < n; r++)
                {
                    for (int j = 0; j < regular.Length; j++) w[r * k + regular[j]] = main[r * regular.Length + j];
                    for (int j = 0; j < channels.Length; j++) w[r * k + channels[j]] = fp8[r * channels.Length + j];
                }
            }
            else w = Dequantize(format, Part(".codes"), Part(".scales"), format.StartsWith("nvfp4") ? Part(".outer_scales") : null, n, k);
            var t = tensor(w, [n, k]);
            result[name] = info["dtype"]?.GetValue<string>() == "BF16" ? t.to(ScalarType.BFloat16) : t;
        }
        foreach (var (name, t) in tensors)
            if (!parts.Contains(name)) result[name] = t.ToTensor();
        return result;
    }

    /// <summary>Row-major [rows, cols] values of one packed operand, as docs/EXPORT.md defines them.</summary>
    static float[] Dequantize(string format, SafeTensor codes, SafeTensor scales, SafeTensor? outer, long rows, long cols)
    {
        var y = new float[rows * cols];
        float[] o = outer?.Floats() ?? [];
        bool tiles = format == "nvfp4-tensor-16x16";
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++)
            {
                long i = r * cols + c;
                switch (format)
                {
                    case "mxfp4":
                        y[i] = E2M1.Decode(Nibble(codes.Data, r * ((cols + 1) / 2) * 2 + c)) * E8M0.Decode(scales.Data[r * ((cols + 31) / 32) + c / 32]);
                        break;
                    case "mxfp8":
                        y[i] = E4M3.Decode(codes.Data[i]) * E8M0.Decode(scales.Data[r * ((cols + 31) / 32) + c / 32]);
                        break;
                    case "nvfp4":
                        y[i] = E2M1.Decode(Nibble(codes.Data, r * ((cols + 1) / 2) * 2 + c))
                            * (E4M3.Decode(scales.Data[r * ((cols + 15) / 16) + c / 16]) * o[r * ((cols + 127) / 128) + c / 128]);
                        break;
                    case "nvfp4-tensor" or "nvfp4-tensor-16x16":
                        byte s = tiles ? scales.Data[r / 16 * (cols / 16) + c / 16] : scales.Data[r * ((cols + 15) / 16) + c / 16];
                        y[i] = E2M1.Decode(Nibble(codes.Data, r * ((cols + 1) / 2) * 2 + c)) * (E4M3.Decode(s) * o[0]);
                        break;
                    default:
                        throw new SafeTensorsFormatException($"unknown weight format '{format}'");
                }
            }
        return y;
    }

    static int Nibble(byte[] codes, long k) => (codes[k >> 1] >> (int)((k & 1) * 4)) & 0xF;
}
