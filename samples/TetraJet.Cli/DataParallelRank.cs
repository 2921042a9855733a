using TetraJet.Distributed;
using TetraJet.Models.Data;
using TetraJet.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// <c>tetrajet train</c> started as a data-parallel rank (RANK and WORLD_SIZE set, by <c>--gpus</c> or the user's own
/// launcher). Rank 0 is the ordinary trainer with a communicator: it owns the run folder, evaluates, reports and writes
/// the checkpoints. Every other rank only trains (<see cref="Follow"/>): it reads the checkpoint to resume, writes
/// nothing, and takes part in each step's collectives, which are all inside <see cref="TaskTrainer.TrainStep"/>.
/// </summary>
static class DataParallelRank
{
    /// <summary>This process's rank, or null when it is not one; bad variables are usage errors.</summary>
    public static DistributedEnvironment? FromEnvironment(TrainOptions o)
    {
        DistributedEnvironment? env;
        try { env = DistributedEnvironment.FromProcess(); }
        catch (ArgumentException e) { throw new UsageException($"data-parallel rank: {e.Message}"); }
        if (env is null) return null;
        if (o.Device != "cuda") throw new UsageException($"RANK and WORLD_SIZE are set, so this is a data-parallel rank, which trains through NCCL on CUDA: add --device cuda");
        return env;
    }

    public static Device Device(DistributedEnvironment env)
    {
        if (!cuda.is_available()) throw new UsageException($"rank {env.Rank}: TorchSharp sees no CUDA GPU; data-parallel training needs one per rank");
        int count = (int)cuda.device_count();
        if (env.DeviceIndex >= count)
            throw new UsageException($"rank {env.Rank}: LOCAL_RANK {env.LocalRank} asks for GPU {env.DeviceIndex}, but this process sees {count}");
        return new Device(DeviceType.CUDA, env.DeviceIndex);
    }

    /// <summary>Checks the batch split, then meets the other ranks and sets up NCCL.</summary>
    public static NcclCommunicator Connect(DistributedEnvironment env, ITrainTask task, int batch)
    {
        try { ShardedTask.Rows(batch, env.Rank, env.WorldSize); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        if (!NcclCommunicator.Available) NcclLibrary.Load();   // throws with the places it looked
        return NcclCommunicator.FromEnvironment(env);
    }

    /// <summary>A rank other than 0: the same model, data and steps as rank 0, and nothing written.</summary>
    public static int Follow(TrainOptions o, Recipe recipe, Device device, int batch, double lr, double wd, double smoothing, Augment augment,
        Trainer.Defaults d, DistributedEnvironment env)
    {
        var ckptPath = Path.Combine(o.OutDir, Checkpoint.FileName);
        Checkpoint? ckpt = null;
        if (o.Resume && File.Exists(ckptPath))
        {
            // Rank 0 checks that it fits this command; on a mismatch it stops, and the launcher stops this rank too.
            try { ckpt = Checkpoint.Read(ckptPath); }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
        }
        manual_seed(o.Seed);
        using ITrainTask task = Trainer.BuildTask(o, recipe, batch, smoothing, augment);
        long total = Trainer.TotalSteps(o, d, task);
        using var communicator = Connect(env, task, batch);
        using var trainer = new TaskTrainer(task, Trainer.Settings(o, total, lr, wd), device, communicator);
        var net = task.Net;
        if (Trainer.PrecisionOf(o, device) == "bf16") net.SetAutocast(ScalarType.BFloat16);
        net.OverlapBackward(o.OverlapsBackward);
        if (recipe.IsQuantized) net.TrackOscillation();
        if (ckpt is not null)
        {
            try { trainer.Resume(ckpt); }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
        }
        net.train();
        long stopAt = Math.Min(total, o.StopAfter ?? long.MaxValue);
        // No interruption check here: a signal stops rank 0 between two steps (it writes the checkpoint), and the
        // launcher then ends the other ranks, which wait in the next step's collectives.
        for (long step = trainer.Step; step < stopAt; step++)
            if (!trainer.TrainStep().Finite) return 1;   // every rank sees the same mean loss and gradients: all stop here
        return 0;
    }
}
