using System.Text.Json;
using TetraJet.Cli;
using TorchSharp;

namespace TetraJet.Models.Tests;

/// <summary><c>train --overlap on|off</c>: backward's Q4/Q6 on a CUDA side stream or in line; recorded in summary.json.</summary>
public class OverlapCliTests
{
    [Fact]
    public void On_by_default_and_only_on_or_off()
    {
        Assert.True(new TrainOptions().OverlapsBackward);
        Assert.False(new TrainOptions { Overlap = "off" }.OverlapsBackward);
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(Path.Combine(CliHarness.TempDir("overlap-bad"), "run"), "tetrajet", 2, "--overlap", "sideways"));
        Assert.Equal(2, code);
        Assert.Contains("unknown --overlap 'sideways'; use on or off", err);
    }

    [Fact]
    public void Off_reaches_the_summary()
    {
        var dir = Path.Combine(CliHarness.TempDir("overlap-off"), "run");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 2, "--overlap", "off"));
        Assert.True(code == 0, err);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        Assert.False(summary.RootElement.GetProperty("OverlapBackward").GetBoolean());
    }

    [Fact]
    public void A_model_switches_every_layer()
    {
        var model = torch.nn.Sequential(("up", new QLinear(128, 256, RecipeId.TetraJet, name: "up")), ("down", new QLinear(256, 128, RecipeId.TetraJet, name: "down")));
        model.OverlapBackward(false);
        Assert.All(model.QuantizedLinears(), l => Assert.False(l.Layer.OverlapBackward));
        model.OverlapBackward();
        Assert.All(model.QuantizedLinears(), l => Assert.True(l.Layer.OverlapBackward));
    }
}
