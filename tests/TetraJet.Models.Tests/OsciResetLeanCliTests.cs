using TetraJet.Cli;
using TetraJet.Models.Training;

namespace TetraJet.Models.Tests;

/// <summary><c>train --osci-reset-lean</c>: the flag reaches the recipe, which the checkpoint records and resume checks.</summary>
public class OsciResetLeanCliTests
{
    [Fact]
    public void Flag_switches_on_lean_osci_reset_and_osci_reset()
    {
        var recipe = new TrainOptions { Recipe = "tetrajet-v2", OsciResetLean = true }.BuildRecipe();
        Assert.True(recipe.OsciReset);
        Assert.True(recipe.OsciResetLean);
        Assert.Equal(0.1, recipe.OsciResetLeanFraction);
        Assert.False(new TrainOptions { Recipe = "tetrajet-v2", OsciReset = true }.BuildRecipe().OsciResetLean);
    }

    [Fact]
    public void Checkpoint_records_the_lean_variant_and_resume_needs_the_flag()
    {
        var dir = Path.Combine(CliHarness.TempDir("lean"), "run");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet-v2", 4, "--osci-reset-lean", "--eval-every", "2", "--stop-after", "2"));
        Assert.True(code == 0, err);
        Assert.Contains("lean: 10% of W nearest a midpoint", Checkpoint.Read(Path.Combine(dir, Checkpoint.FileName)).Header.RecipeDescription);

        var plain = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet-v2", 4, "--osci-reset", "--eval-every", "2", "--resume"));
        Assert.Equal(2, plain.Code);
        var lean = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet-v2", 4, "--osci-reset-lean", "--eval-every", "2", "--resume"));
        Assert.True(lean.Code == 0, lean.Err);
    }
}
