using TetraJet.Cli;
using TetraJet.Models.Training;

namespace TetraJet.Models.Tests;

/// <summary>Every kind of bad input ends with one line on stderr that says what to do, exit code 2, and no files touched.</summary>
public class BadInputTests
{
    static void AssertUsageError((int Code, string Out, string Err) r, string expected)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
    }

    [Theory]
    [InlineData("unknown recipe 'fp3'", "train", "vit", "--recipe", "fp3")]
    [InlineData("unknown model 'cnn'", "train", "cnn")]
    [InlineData("unknown vit size 'huge'", "train", "vit", "--size", "huge")]
    [InlineData("unknown gpt size 'tiny'", "train", "gpt", "--size", "tiny")]
    [InlineData("unknown device 'tpu'", "train", "vit", "--device", "tpu")]
    [InlineData("unknown precision 'fp16'", "train", "vit", "--precision", "fp16")]
    [InlineData("--bogus", "train", "vit", "--bogus")]
    [InlineData("--steps must be positive", "train", "vit", "--steps", "0")]
    [InlineData("multiples of 128", "train", "vit", "--size", "tiny", "--recipe", "tetrajet-v2", "--train-subset", "256", "--eval-subset", "64")]
    [InlineData("--clip -1: use 0", "train", "vit", "--clip", "-1")]
    [InlineData("--clip NaN", "train", "vit", "--clip", "NaN")]
    [InlineData("--profile-step must be positive", "train", "vit", "--profile-step", "0")]
    [InlineData("--profile-step needs --device cuda", "train", "vit", "--profile-step", "3")]
    public void Unknown_names_and_values_are_refused(string expected, params string[] args)
    {
        var dir = Path.Combine(CliHarness.TempDir("names"), "run");
        AssertUsageError(CliHarness.Run([.. args, "--out", dir]), expected);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Cuda_without_a_gpu_is_refused()
    {
        if (TorchSharp.torch.cuda.is_available()) return;   // only meaningful on a machine without CUDA
        var dir = Path.Combine(CliHarness.TempDir("cuda"), "run");
        AssertUsageError(CliHarness.Run("train", "vit", "--device", "cuda", "--out", dir), "--device cpu");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Missing_data_is_refused()
    {
        var root = CliHarness.TempDir("missing");
        var dir = Path.Combine(root, "run");
        AssertUsageError(CliHarness.Run("train", "vit", "--data", Path.Combine(root, "nowhere"), "--out", dir), "--data");
        AssertUsageError(CliHarness.Run("train", "gpt", "--data", Path.Combine(root, "nowhere.txt"), "--out", dir), "does not exist");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Malformed_data_is_refused()
    {
        var root = CliHarness.TempDir("malformed");
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(data);
        foreach (var f in Directory.GetFiles(Models.Data.DataFiles.Shipped("fashion-mnist")))
            File.Copy(f, Path.Combine(data, Path.GetFileName(f)));
        File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte.gz"), [0x1f, 0x8b, 1, 2, 3]);
        var dir = Path.Combine(root, "run");
        AssertUsageError(CliHarness.Run("train", "vit", "--data", data, "--out", dir), "gzip");
        File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte.gz"), new byte[100]);
        AssertUsageError(CliHarness.Run("train", "vit", "--data", data, "--out", dir), "magic");
        var text = Path.Combine(root, "short.txt");
        File.WriteAllText(text, "too short");
        AssertUsageError(CliHarness.Run("train", "gpt", "--data", text, "--out", dir), "at least");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void An_out_folder_with_another_run_is_not_overwritten()
    {
        var dir = Path.Combine(CliHarness.TempDir("occupied"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 2)).Code);
        var before = CliHarness.Snapshot(dir);
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 2)), "--resume");
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(dir, "bf16", 4, "--resume")), "recipe");
        AssertUsageError(CliHarness.Run(["train", "gpt", "--steps", "4", "--out", dir, "--resume"]), "vit");
        CliHarness.AssertUnchanged(before, dir);
    }

    [Fact]
    public void Resume_without_a_checkpoint_is_refused()
    {
        var dir = Path.Combine(CliHarness.TempDir("nockpt"), "run");
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 2, "--resume")), "no checkpoint");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void A_corrupt_checkpoint_is_refused()
    {
        var dir = Path.Combine(CliHarness.TempDir("corrupt"), "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--stop-after", "2")).Code);
        var ckpt = Path.Combine(dir, Checkpoint.FileName);
        var bytes = File.ReadAllBytes(ckpt);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(ckpt, bytes);
        var before = CliHarness.Snapshot(dir);
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume")), "corrupt");
        File.WriteAllBytes(ckpt, bytes[..100]);
        before = CliHarness.Snapshot(dir);
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 4, "--resume")), "unusable");
        CliHarness.AssertUnchanged(before, dir);
    }

    [Fact]
    public void A_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint()
    {
        var dir = Path.Combine(CliHarness.TempDir("nan"), "run");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 40, "--lr", "1e30", "--clip", "0", "--checkpoint-every", "1", "--weight-decay", "0"));
        Assert.Equal(1, code);
        Assert.Contains("not finite", err);
        var ckpt = Checkpoint.Read(Path.Combine(dir, Checkpoint.FileName));
        Assert.InRange(ckpt.Header.Step, 1, 39);
        Assert.Contains($"step {ckpt.Header.Step}", err);
        Assert.False(File.Exists(Path.Combine(dir, "summary.json")));
    }

    [Fact]
    public void Compare_refuses_an_output_inside_a_run_folder()
    {
        var root = CliHarness.TempDir("cmpout");
        var dir = Path.Combine(root, "run");
        Assert.Equal(0, CliHarness.Run(CliHarness.QuickVit(dir, "tetrajet", 2)).Code);
        var before = CliHarness.Snapshot(dir);
        AssertUsageError(CliHarness.Run("compare", dir, "--out", Path.Combine(dir, MetricsCsv.FileName)), "inside the run folder");
        AssertUsageError(CliHarness.Run("compare", dir, "--out", Path.Combine(dir, "compare.png")), "inside the run folder");
        AssertUsageError(CliHarness.Run("compare", dir, "--out", dir), "is a folder");
        CliHarness.AssertUnchanged(before, dir);
        var r = CliHarness.Run("compare", dir, "--out", Path.Combine(root, "compare.png"));
        Assert.True(r.Code == 0, r.Err);
    }

    [Fact]
    public void Experiment_output_into_a_missing_folder_fails_before_the_experiment()
    {
        var missing = Path.Combine(CliHarness.TempDir("expout"), "no", "such", "table.md");
        var r = CliHarness.Run("experiment", "oscillation", "--out", missing);
        AssertUsageError(r, "does not exist");
        Assert.Equal("", r.Out);   // nothing ran: the experiment prints its header first
        AssertUsageError(CliHarness.Run("experiment", "oscillation", "--steps", "5"), "at least 20");
    }

    [Fact]
    public void A_failure_of_the_file_system_is_one_line_too()
    {
        var root = CliHarness.TempDir("fsfail");
        var file = Path.Combine(root, "a-file");
        File.WriteAllText(file, "x");
        // The run folder's parent is a file: creating the folder fails deep inside the run.
        AssertUsageError(CliHarness.Run(CliHarness.QuickVit(Path.Combine(file, "run"), "tetrajet", 2)), "a-file");
    }
}
