using TetraJet.Cli;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Models.Tests;

/// <summary>What of <c>--gpus</c> and the rank's sharding runs without a GPU: the shards, the launcher's command lines and its refusals.</summary>
public class DataParallelCliTests
{
    /// <summary>A task whose batch of step s is rows s·100 + 0 … s·100 + 11, to see which rows a rank gets.</summary>
    sealed class RowsTask : ITrainTask
    {
        public string ModelName => "test";
        public nn.Module<Tensor, Tensor> Net { get; } = nn.Identity();
        public object Config => "";
        public string SizeName => "";
        public string Unit => "rows/s";
        public int StepsPerEpoch => 10;
        public long ItemsPerStep => 12;
        public double Beta2 => 0.9;
        public bool Decays(string name, Tensor p) => false;
        // Ranges built by arange alone: a tensor + long failed once in CI on libtorch's alpha check.
        public (Tensor Input, Tensor Target) Batch(long step) =>
            (arange(step * 100, step * 100 + 12, dtype: ScalarType.Int64), arange(-step, 12 - step, dtype: ScalarType.Int64));
        public (Tensor Loss, Tensor? Correct) Loss(Tensor output, Tensor target) => (output.sum(), null);
        public EvalResult Evaluate(Device device) => new(0, null, null);
        public void Dispose() { }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Shards_are_disjoint_cover_the_batch_in_order_and_are_reproducible(int world)
    {
        var inner = new RowsTask();
        for (long step = 0; step < 3; step++)
        {
            var rows = Enumerable.Range(0, world).SelectMany(r => new ShardedTask(inner, r, world).Batch(step).Input.data<long>().ToArray()).ToList();
            Assert.Equal(inner.Batch(step).Input.data<long>().ToArray(), rows);
            var again = new ShardedTask(inner, world - 1, world).Batch(step);
            Assert.Equal(new ShardedTask(inner, world - 1, world).Batch(step).Target.data<long>().ToArray(), again.Target.data<long>().ToArray());
        }
        Assert.Equal(12, new ShardedTask(inner, 0, world).ItemsPerStep);
    }

    [Fact]
    public void A_batch_that_does_not_split_evenly_is_refused()
    {
        Assert.Equal((8L, 4L), ShardedTask.Rows(16, 2, 4));
        var e = Assert.Throws<ArgumentException>(() => ShardedTask.Rows(10, 0, 4));
        Assert.Contains("multiple of 4", e.Message);
        Assert.Throws<ArgumentException>(() => ShardedTask.Rows(8, 2, 2));
    }

    [Fact]
    public void The_launcher_repeats_the_command_without_gpus_for_each_rank()
    {
        Assert.Equal(["train", "gpt", "--steps", "5", "--device", "cuda"],
            DataParallelLauncher.WorkerArgs(["train", "gpt", "--gpus", "2", "--steps", "5", "--device", "cuda"]));
        Assert.Equal(["train", "--quiet"], DataParallelLauncher.WorkerArgs(["train", "--gpus=4", "--quiet", "--gpus:2"]));
        var (file, prefix) = DataParallelLauncher.SelfCommand("/usr/bin/dotnet", "/app/TetraJet.Cli.dll");
        Assert.Equal("/usr/bin/dotnet", file);
        Assert.Equal(["/app/TetraJet.Cli.dll"], prefix);
        Assert.Empty(DataParallelLauncher.SelfCommand("/home/u/.dotnet/tools/tetrajet", "/x/TetraJet.Cli.dll").Prefix);
        Assert.Equal(["0", "1"], DataParallelLauncher.DeviceList(null, 8, 2));
        Assert.Equal(["4", "6"], DataParallelLauncher.DeviceList("4,6,7", 3, 2));
        Assert.Contains("only 1 GPU(s) visible", Assert.Throws<UsageException>(() => DataParallelLauncher.DeviceList("3", 1, 2)).Message);
        var env = DataParallelLauncher.RankEnvironment(1, 2, 29511, ["4", "6"]);
        Assert.Equal(new Dictionary<string, string>
        {
            ["RANK"] = "1", ["WORLD_SIZE"] = "2", ["LOCAL_RANK"] = "1", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = "29511", ["CUDA_VISIBLE_DEVICES"] = "6",
        }, env);
    }

    [Theory]
    [InlineData("--gpus trains through NCCL on CUDA GPUs: add --device cuda", "--gpus", "2")]
    [InlineData("--gpus 0: use 1 or more", "--gpus", "0", "--device", "cuda")]
    public void Gpus_is_refused_where_it_cannot_run(string message, params string[] extra)
    {
        var dir = CliHarness.TempDir("gpus");
        var (code, _, err) = CliHarness.Run(CliHarness.QuickVit(Path.Combine(dir, "run"), extra: extra));
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }
}
