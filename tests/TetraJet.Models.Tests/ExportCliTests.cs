using TetraJet.Cli;
using TetraJet.IO;
using TetraJet.Models.Training;
using TetraJet.Quantization;
using TetraJet.Quantization.Reference;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary><c>tetrajet export</c>: a run's checkpoint to safetensors, Q2(W) bit for bit; bad input is one line and exit 2.</summary>
public class ExportCliTests
{
    /// <summary>The run's checkpointed state by name, as float32 arrays, and the names of the quantized layers' own buffers.</summary>
    static (Dictionary<string, float[]> State, HashSet<string> LayerBuffers) CheckpointState(string run, Recipe recipe)
    {
        var ckpt = Checkpoint.Read(Path.Combine(run, Checkpoint.FileName));
        Assert.Equal(recipe.Describe(), ckpt.Recipe.Describe());
        using var net = ckpt.CreateModel();
        var layerBuffers = net.QuantizedLinears().SelectMany(l => l.Layer.named_buffers().Select(b => $"{l.Path}.{b.name}")).ToHashSet();
        return (net.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray()), layerBuffers);
    }

    [Theory]
    [InlineData("tetrajet")]
    [InlineData("tetrajet-v2")]
    public void Export_writes_the_forward_weights_of_the_checkpoint(string recipeName)
    {
        var root = CliHarness.TempDir("export");
        var run = Path.Combine(root, "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(run, recipeName, 3)).Code);
        var output = Path.Combine(root, "model.safetensors");
        var (code, stdout, err) = CliHarness.Run("export", "--run", run, "--output", output);
        Assert.True(code == 0, err);
        Assert.Contains("exported vit tiny-cpu", stdout);

        var (tensors, meta) = SafeTensors.Read(output);
        var recipe = Recipe.Parse(recipeName);
        Assert.Equal(recipe.Name, meta[InferenceExport.RecipeKey]);
        Assert.Equal("3", meta["tetrajet.step"]);
        Assert.Equal("vit", meta["tetrajet.model"]);
        var (weights, layerBuffers) = CheckpointState(run, recipe);
        var loaded = InferenceExport.LoadDequantized(output);
        int quantized = 0;
        foreach (var (name, w) in weights)
        {
            if (layerBuffers.Contains(name))
            {
                Assert.False(tensors.ContainsKey(name), $"{name}: training state of a layer is not exported");
                continue;
            }
            if (name.EndsWith(".Qkv.weight") || name.EndsWith(".Proj.weight") || name.EndsWith(".Fc1.weight") || name.EndsWith(".Fc2.weight"))
            {
                // Q2(W) of the checkpointed weight, by the scalar reference.
                var t = loaded[name];
                int n = (int)t.shape[0], k = (int)t.shape[1];
                var expected = new float[w.Length];
                ReferenceQuantizer.Quantize(w, expected, n, k, BlockAxis.Last, recipe.Q2.Spec);
                Assert.Equal(expected.Select(BitConverter.SingleToUInt32Bits), t.data<float>().ToArray().Select(BitConverter.SingleToUInt32Bits));
                Assert.Equal("U8", tensors[name + ".codes"].DType);
                quantized++;
            }
            else
            {
                Assert.Equal("BF16", tensors[name].DType);
                var bf16 = tensor(w).to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray();
                Assert.Equal(bf16, loaded[name].to(ScalarType.Float32).data<float>().ToArray());
            }
        }
        Assert.Equal(16, quantized);   // tiny-cpu: 4 blocks × 4 linears
    }

    [Fact]
    public void Export_finds_the_options_the_run_trained_with()
    {
        var root = CliHarness.TempDir("export-options");
        var run = Path.Combine(root, "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(run, "tetrajet", 12, "--q-ema", "--osci-reset")).Code);
        var output = Path.Combine(root, "model.safetensors");
        var (code, _, err) = CliHarness.Run("export", "--run", run, "--output", output);
        Assert.True(code == 0, err);
        var (_, meta) = SafeTensors.Read(output);
        Assert.Equal("TetraJet (Q-EMA (β = 0.998), OsciReset (τ = 8))", meta[InferenceExport.RecipeKey]);
        // Twelve steps pass Q-EMA's warm-up: the exported weights are EMA-guided.
        Assert.Contains("\"rounding\":\"EMA\"", meta[InferenceExport.LayersKey]);
    }

    [Fact]
    public void Bad_exports_are_one_line_and_exit_2_and_touch_nothing()
    {
        var root = CliHarness.TempDir("export-bad");
        var run = Path.Combine(root, "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(run, "tetrajet", 2)).Code);
        var before = CliHarness.Snapshot(run);
        var existing = Path.Combine(root, "existing.safetensors");
        File.WriteAllText(existing, "keep me");
        var empty = Path.Combine(root, "empty-run");
        Directory.CreateDirectory(empty);

        foreach (var (args, expected) in new (string[], string)[]
        {
            (["export", "--run", Path.Combine(root, "nope"), "--output", Path.Combine(root, "m.safetensors")], "is not a folder"),
            (["export", "--run", empty, "--output", Path.Combine(root, "m.safetensors")], "has no checkpoint.tjckpt"),
            (["export", "--run", run, "--output", Path.Combine(run, Checkpoint.FileName), "--force"], "is a file of the run"),
            (["export", "--run", run, "--output", Path.Combine(run, MetricsCsv.FileName), "--force"], "is a file of the run"),
            (["export", "--run", run, "--output", existing], "pass --force"),
            (["export", "--run", run, "--output", Path.Combine(root, "missing", "m.safetensors")], "does not exist"),
            (["export", "--run", run, "--output", root], "is a folder"),
            (["export", "--run", run], "--output"),
        })
        {
            var (code, stdout, err) = CliHarness.Run(args);
            Assert.Equal(2, code);
            Assert.Equal("", stdout);
            Assert.StartsWith("error: ", err);
            Assert.Contains(expected, err);
            Assert.Single(err.TrimEnd('\n').Split('\n'));
        }
        CliHarness.AssertUnchanged(before, run);
        Assert.Equal("keep me", File.ReadAllText(existing));
        Assert.False(Directory.Exists(Path.Combine(root, "missing")));

        // A damaged checkpoint is bad input too.
        var damaged = Path.Combine(root, "damaged");
        Directory.CreateDirectory(damaged);
        var bytes = File.ReadAllBytes(Path.Combine(run, Checkpoint.FileName));
        File.WriteAllBytes(Path.Combine(damaged, Checkpoint.FileName), bytes[..(bytes.Length / 2)]);
        var bad = CliHarness.Run("export", "--run", damaged, "--output", Path.Combine(root, "d.safetensors"));
        Assert.Equal(2, bad.Code);
        Assert.Contains("checksum", bad.Err);

        // --force replaces an existing export.
        Assert.Equal(0, CliHarness.Run("export", "--run", run, "--output", existing, "--force").Code);
        Assert.NotNull(SafeTensors.Read(existing).Tensors["blocks.0.Qkv.weight.codes"]);
    }
}
