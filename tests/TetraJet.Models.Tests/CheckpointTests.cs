using TetraJet.Models.Training;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary><c>checkpoint.tjckpt</c> as library API: what the CLI writes, code reads back.</summary>
public class CheckpointTests
{
    static byte[] Save(nn.Module model)
    {
        var ms = new MemoryStream();
        model.save(ms);
        return ms.ToArray();
    }

    [Fact]
    public void A_cli_checkpoint_rebuilds_its_model_exactly()
    {
        var dir = Path.Combine(CliHarness.TempDir("ckptapi"), "run");
        var r = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet-v2", 3, "--osci-reset"));
        Assert.True(r.Code == 0, r.Err);
        var ckpt = Checkpoint.Read(Path.Combine(dir, Checkpoint.FileName));
        Assert.Equal(2, ckpt.Header.Format);
        Assert.Equal(ckpt.Header.RecipeDescription, ckpt.Recipe.Describe());
        Assert.True(ckpt.Recipe.OsciReset);

        using var model = ckpt.CreateModel();
        var vit = Assert.IsType<Vit>(model);
        Assert.Equal(3, vit.QuantizedLinears.First().OptimizerSteps);
        Assert.True(Save(model).AsSpan().SequenceEqual(ckpt.ModelState), "the rebuilt model's state differs from the checkpoint's");
    }

    [Fact]
    public void A_format_1_checkpoint_still_loads_its_weights_but_cannot_resume()
    {
        var dir = Path.Combine(CliHarness.TempDir("ckptv1"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--stop-after", "2")).Code);
        var path = Path.Combine(dir, Checkpoint.FileName);
        var current = Checkpoint.Read(path);

        // What an earlier version wrote: no layer counters, no recipe in the header, no oscillation windows.
        using var source = current.CreateModel();
        var counters = source.state_dict().Keys.Where(k => k.EndsWith(QLinear.CountersName, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(counters);
        var old = new MemoryStream();
        source.save(new BinaryWriter(old), skip: counters);
        new Checkpoint
        {
            Header = current.Header with { Format = 1, RecipeSpec = null },
            ModelState = old.ToArray(),
            OptimizerState = current.OptimizerState,
        }.Write(path);
        var v1 = Checkpoint.Read(path);
        Assert.Equal(1, v1.Header.Format);

        using var target = new Vit(VitConfig.Get("tiny-cpu"), Recipe.TetraJet);
        v1.LoadModel(target);
        foreach (var (key, value) in source.state_dict().Where(kv => !counters.Contains(kv.Key)))
            Assert.True(value.eq(target.state_dict()[key]).all().item<bool>(), $"{key} differs");
        Assert.Throws<CheckpointException>(() => v1.CreateModel());

        var resume = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume"));
        Assert.Equal(2, resume.Code);
        Assert.Contains("earlier version (format 1)", resume.Err);
    }
}
