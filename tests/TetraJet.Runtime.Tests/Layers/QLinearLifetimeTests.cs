using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Layers;

/// <summary>
/// On CUDA, autograd runs backward on its own device thread, outside any dispose scope of the trainer. These tests
/// train on a thread with no dispose scope at all, which is that situation on the CPU, and count the thread's live
/// tensors: a step must leave nothing behind but what the caller holds.
/// </summary>
public class QLinearLifetimeTests
{
    [Theory]
    [InlineData(RecipeId.BF16)]
    [InlineData(RecipeId.TetraJet)]
    [InlineData(RecipeId.TetraJetV2)]
    [InlineData(RecipeId.NvidiaNvfp4)]
    public void Steps_without_a_dispose_scope_leave_no_tensors_behind(RecipeId id)
    {
        long[] live = new long[6];
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                var stats = DisposeScopeManager.Statistics;
                using var layer = new QLinear(128, 128, id, name: "fc");
                using var x = randn(2, 16, 128);
                for (int step = 0; step < live.Length; step++)
                {
                    using (var y = layer.call(x))
                    using (var y2 = y.square())
                    using (var loss = y2.sum())
                        loss.backward();
                    live[step] = stats.ThreadTotalLiveCount;
                }
            }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        thread.Join();
        Assert.Null(error);
        // Step 1 creates the gradient buffers; from then on the count must stand still.
        Assert.True(live[1..].All(n => n == live[1]), $"live tensors per step: {string.Join(", ", live)}");
    }
}
