using TetraJet;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Activation memory per layer: a stack of linears (T = 8192, K = N = 4096, bf16) runs forward, each intermediate
/// output released once the next layer has consumed it (what autograd saves stays), and the device memory in use
/// after the forward, less the input, the weights and the last output, is divided by the depth. Run with
/// PYTORCH_NO_CUDA_MEMORY_CACHING=1 so that memory in use is memory allocated, not torch's cache.
/// </summary>
static class MemoryBench
{
    public record Row(string Layer, double PerLayerMiB, double SavedMiBReported, double RelativeToLinear);

    public static List<Row> Run(Device device)
    {
        const int T = 8192, K = 4096, N = 4096, Depth = 6;
        var gpu = CudaRunner.ForDevice(0);
        if (Environment.GetEnvironmentVariable("PYTORCH_NO_CUDA_MEMORY_CACHING") != "1")
            Console.WriteLine("memory: note: PYTORCH_NO_CUDA_MEMORY_CACHING is not 1; torch's cache is counted too");
        var configs = new (string Name, Func<int, nn.Module<Tensor, Tensor>> Make)[]
        {
            ("nn.Linear", i => nn.Linear(K, N, hasBias: false)),
            ("QLinear BF16 recipe", i => new QLinear(K, N, Recipe.BF16, bias: false, name: $"m{i}")),
            ("QLinear TetraJet, X̂/Ŵ packed", i => new QLinear(K, N, Recipe.TetraJet, bias: false, name: $"m{i}")),
            ("QLinear TetraJet, X̂/Ŵ bf16", i => new QLinear(K, N, Recipe.TetraJet, bias: false, name: $"m{i}") { PackSavedOperands = false }),
            ("QLinear TetraJet-v2, X̂/Ŵ packed", i => new QLinear(K, N, Recipe.TetraJetV2, bias: false, name: $"m{i}")),
            ("QLinear TetraJet-v2, X̂/Ŵ bf16", i => new QLinear(K, N, Recipe.TetraJetV2, bias: false, name: $"m{i}") { PackSavedOperands = false }),
            ("QLinear NVIDIA NVFP4 (keeps X)", i => new QLinear(K, N, Recipe.NvidiaNvfp4, bias: false, name: $"m{i}")),
        };
        var rows = new List<Row>();
        double? linear = null;
        foreach (var (name, make) in configs)
        {
            var layers = Enumerable.Range(0, Depth).Select(make).ToList();
            foreach (var l in layers) { l.to(device, ScalarType.BFloat16); l.train(); }
            double perLayer, reported;
            using (var scope = NewDisposeScope())
            {
                var x = randn(new long[] { T, K }, ScalarType.BFloat16, device).requires_grad_();
                gpu.Synchronize();
                long before = gpu.MemoryInUse();
                var h = x;
                foreach (var l in layers)
                {
                    var next = l.call(h);
                    if (!ReferenceEquals(h, x)) h.Dispose();   // the graph keeps what it saved; the handle goes
                    h = next;
                }
                gpu.Synchronize();
                long after = gpu.MemoryInUse();
                perLayer = (after - before - h.numel() * 2) / (double)Depth / 1048576;
                reported = layers.OfType<QLinear>().Select(q => q.LastSavedBytes).DefaultIfEmpty((long)T * K * 2).Average() / 1048576;
                h.sum().backward();                             // the graph must still work
            }
            foreach (var l in layers) l.Dispose();
            linear ??= perLayer;
            var row = new Row(name, Math.Round(perLayer, 1), Math.Round(reported, 1), Math.Round(perLayer / linear.Value, 3));
            rows.Add(row);
            Console.WriteLine($"memory {name,-36} {row.PerLayerMiB,8:F1} MiB per layer  (kept for backward by the layer's count: {row.SavedMiBReported:F1} MiB)  {row.RelativeToLinear:F3}x nn.Linear");
        }
        return rows;
    }
}
