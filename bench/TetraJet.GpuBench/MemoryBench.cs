using TetraJet;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Activation memory per layer: stacks of linears (T = 8192, K = N = 4096, bf16) of depth 2 and 6 run forward, each
/// intermediate output released once the next layer has consumed it (what autograd saves stays); the difference of
/// the device memory in use after the two forwards, over the 4 extra layers, is what one layer keeps. Run with
/// PYTORCH_NO_CUDA_MEMORY_CACHING=1 so that memory in use is memory allocated, not torch's cache.
/// </summary>
static class MemoryBench
{
    public record Row(string Layer, double PerLayerMiB, double SavedMiBReported, double RelativeToLinear);

    const int T = 8192, K = 4096, N = 4096, Shallow = 2, Deep = 6;

    public static List<Row> Run(Device device)
    {
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
        // One-off allocations (cuBLAS handles and workspaces, kernel modules) happen in this throwaway run, not in a row.
        Measure(device, configs[2].Make, Shallow);
        Measure(device, configs[0].Make, Shallow);
        var rows = new List<Row>();
        double? linear = null;
        foreach (var (name, make) in configs)
        {
            // The difference of two depths is what each further layer keeps, free of one-off allocations
            // (cuBLAS workspace, the first input) that one depth would smear over its layers.
            var (shallow, reported) = Measure(device, make, Shallow);
            var (deep, _) = Measure(device, make, Deep);
            double perLayer = (deep - shallow) / (double)(Deep - Shallow) / 1048576;
            linear ??= perLayer;
            var row = new Row(name, Math.Round(perLayer, 1), Math.Round(reported / 1048576, 1), Math.Round(perLayer / linear.Value, 3));
            rows.Add(row);
            Console.WriteLine($"memory {name,-36} {row.PerLayerMiB,8:F1} MiB per layer  (kept for backward by the layer's count: {row.SavedMiBReported:F1} MiB)  {row.RelativeToLinear:F3}x nn.Linear");
        }
        return rows;
    }

    /// <summary>Device memory in use after the forward of <paramref name="depth"/> layers, less before it; and the bytes one layer reports keeping.</summary>
    static (long Used, double Reported) Measure(Device device, Func<int, nn.Module<Tensor, Tensor>> make, int depth)
    {
        var gpu = CudaRunner.ForDevice(0);
        var layers = Enumerable.Range(0, depth).Select(make).ToList();
        foreach (var l in layers) { l.to(device, ScalarType.BFloat16); l.train(); }
        long used;
        double reported;
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
            used = gpu.MemoryInUse() - before;
            reported = layers.OfType<QLinear>().Select(q => (double)q.LastSavedBytes).DefaultIfEmpty((double)T * K * 2).Average();
            h.sum().backward();                             // the graph must still work
        }
        foreach (var l in layers) l.Dispose();
        return (used, reported);
    }
}
