using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using TetraJet.IO;
using TetraJet.Models;
using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// <c>tetrajet export --run DIR --output FILE</c>: the run's checkpoint for inference, as
/// <see cref="InferenceExport"/> writes it (docs/EXPORT.md). Bad input is one <c>error:</c> line and exit 2.
/// </summary>
public static class ExportCommand
{
    /// <summary>Files a run folder holds that an export must never replace.</summary>
    static readonly string[] RunFiles = [Checkpoint.FileName, MetricsCsv.FileName, "summary.json", "curves.png"];

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var run = new Option<string>("--run") { Description = "run folder written by 'tetrajet train' (its checkpoint.tjckpt is exported)", Required = true };
        var output = new Option<string>("--output") { Description = "safetensors file to write", Required = true };
        var force = new Option<bool>("--force") { Description = "replace --output if it exists" };
        var cmd = new Command("export", "write a run's model for inference: FP4 weights in storage form, the rest in BF16 (safetensors)") { run, output, force };
        cmd.SetAction(p =>
        {
            try { return Run(p.GetValue(run)!, p.GetValue(output)!, p.GetValue(force), stdout); }
            catch (Exception e) when (e is UsageException or DataException)
            {
                stderr.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }

    public static int Run(string runDir, string output, bool force, TextWriter stdout)
    {
        // 1. Everything about the paths before reading anything large.
        if (!Directory.Exists(runDir)) throw new UsageException($"--run {runDir} is not a folder");
        var ckptPath = Path.Combine(runDir, Checkpoint.FileName);
        if (!File.Exists(ckptPath)) throw new UsageException($"{runDir} has no {Checkpoint.FileName} yet; export a run that has written a checkpoint");
        var target = Path.GetFullPath(output);
        if (Directory.Exists(target)) throw new UsageException($"--output {output} is a folder; name a file such as model.safetensors");
        var folder = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(folder)) throw new UsageException($"the folder of --output, {folder}, does not exist; create it first");
        if (IsRunFile(target, Path.GetFullPath(runDir))) throw new UsageException($"--output {output} is a file of the run; choose another name, e.g. {Path.Combine(runDir, "model.safetensors")}");
        if (File.Exists(target) && !force) throw new UsageException($"{output} exists; pass --force to replace it");

        // 2. The model as the checkpoint describes it: format 2 records the recipe; format 1 only its description.
        Checkpoint ckpt;
        try { ckpt = Checkpoint.Read(ckptPath); }
        catch (CheckpointException e) { throw new UsageException(e.Message); }
        var h = ckpt.Header;
        Recipe recipe;
        nn.Module<Tensor, Tensor> built;
        try
        {
            if (h.RecipeSpec is not null)
            {
                recipe = ckpt.Recipe;
                built = ckpt.CreateModel();
            }
            else
            {
                recipe = RecipeOf(h);
                built = BuildModel(h, recipe);
                ckpt.LoadModel(built);
            }
        }
        catch (CheckpointException e)
        {
            throw new UsageException($"checkpoint {ckptPath} does not fit a {h.Model} {h.Size} model ({e.Message})");
        }
        using var net = built;

        // 3. The file.
        var metadata = new Dictionary<string, string>
        {
            ["tetrajet.model"] = h.Model,
            ["tetrajet.size"] = h.Size,
            ["tetrajet.model_config"] = h.ModelConfig,
            ["tetrajet.step"] = h.Step.ToString(CultureInfo.InvariantCulture),
            ["tetrajet.recipe_description"] = h.RecipeDescription,
        };
        InferenceExport.Save(net, target, metadata, InferenceExport.RecipeLabel(recipe));

        long fp32 = net.parameters().Sum(p => p.numel()) * 4, bytes = new FileInfo(target).Length;
        var quantized = net.QuantizedLinears().Count(l => l.Layer.Recipe.Q2.IsQuantized);
        stdout.WriteLine($"exported {h.Model} {h.Size} {InferenceExport.RecipeLabel(recipe)} at step {h.Step}: {quantized} quantized weights in storage form, " +
            $"the rest in BF16 → {output} ({bytes / 1048576.0:0.00} MiB, {100.0 * bytes / fp32:0.0}% of FP32)");
        return 0;
    }

    static bool IsRunFile(string target, string runDir)
    {
        if (!string.Equals(Path.GetDirectoryName(target), Path.TrimEndingDirectorySeparator(runDir), StringComparison.Ordinal)) return false;
        var name = Path.GetFileName(target);
        return RunFiles.Contains(name) || name.StartsWith("events.out.tfevents.", StringComparison.Ordinal) || name.EndsWith(".csv", StringComparison.Ordinal)
            || name.StartsWith(Checkpoint.FileName, StringComparison.Ordinal);
    }

    /// <summary>
    /// The run's recipe: the named recipe with the option flags whose <c>Describe()</c> the checkpoint recorded (the
    /// same check a resume makes), so that Q-EMA and OutControl shape Q2(W) as they did in training.
    /// </summary>
    static Recipe RecipeOf(CheckpointHeader h)
    {
        for (int flags = 0; flags < 32; flags++)
        {
            var o = new TrainOptions
            {
                Recipe = h.Recipe, QEma = (flags & 1) != 0, QRamping = (flags & 2) != 0, OsciReset = (flags & 4) != 0,
                OsciResetLean = (flags & 8) != 0, OutControl = (flags & 16) != 0,
            };
            Recipe r;
            try { r = o.BuildRecipe(); }
            catch (UsageException) { break; }
            if (r.Describe() == h.RecipeDescription) return r;
        }
        throw new UsageException($"the checkpoint's recipe '{h.Recipe}' ({h.RecipeDescription.Split('\n').LastOrDefault(l => l.StartsWith("options:"))?.Trim()}) is not one this build makes");
    }

    static nn.Module<Tensor, Tensor> BuildModel(CheckpointHeader h, Recipe recipe)
    {
        try
        {
            return h.Model switch
            {
                "vit" => new Vit(JsonSerializer.Deserialize<VitConfig>(h.ModelConfig) ?? throw new JsonException("empty model config"), recipe),
                "gpt" => new Gpt(JsonSerializer.Deserialize<GptConfig>(h.ModelConfig) ?? throw new JsonException("empty model config"), recipe),
                _ => throw new UsageException($"the checkpoint holds a '{h.Model}' model; this build exports vit and gpt"),
            };
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new UsageException($"the checkpoint's model config {h.ModelConfig} cannot be built ({e.Message})");
        }
    }
}
