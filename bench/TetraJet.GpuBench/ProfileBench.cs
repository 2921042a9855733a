using System.Diagnostics;
using ILGPU;
using TetraJet.Gemm;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Where a linear's time goes (<c>GpuBench profile</c>). Per shape and variant: the steady time per forward+backward
/// (as <c>linear</c>), the host's time to enqueue one call on an idle GPU and that call's time to completion; a call
/// whose enqueue time is near its steady time is bound by the host, not the GPU. Then two calls inside a profiler range,
/// opened by a marker kernel whose grid has as many groups as the row's number: under
/// <c>ncu --profile-from-start off</c> every kernel of the range is timed and attributed to its row
/// (bench/gpu-profile.sh). Last, cuBLASLt's FP8 scaling modes beside the BF16 GEMM on each GEMM of the shapes.
/// </summary>
static class ProfileBench
{
    /// <summary>Does nothing: its launches delimit the profiled rows (grid size = row number).</summary>
    public static void Marker(ArrayView<int> unused) { }

    public static (string Label, int T, int K, int N)[] Shapes =>
    [
        ("reference", 8192, 4096, 4096),
        ("GPT-70m", 32768, 512, 1536),
        ("GPT-70m", 32768, 512, 512),
        ("ViT-small", 6400, 384, 384),
    ];

    /// <summary>
    /// With <paramref name="rangesOnly"/> (the run under the profiler) the timings and the GEMM modes are skipped; with
    /// <paramref name="only"/> the rows of those numbers alone run (numbering unchanged).
    /// </summary>
    public static object Run(Device device, IReadOnlyList<LinearBench.Variant> variants, Func<Action, int, double> timeMs, Action<string> log, bool rangesOnly,
        IReadOnlySet<int>? only = null)
    {
        var runner = CudaRunner.ForDevice(0);
        var marker = typeof(ProfileBench).GetMethod(nameof(Marker))!;
        var rows = new List<object>();
        int index = 0;
        foreach (var (label, t, k, n) in Shapes)
            foreach (var v in variants)
            {
                index++;
                if (only is not null && !only.Contains(index)) continue;
                using var scope = NewDisposeScope();
                var layer = v.Build(k, n);
                layer.to(device);
                layer.to(ScalarType.BFloat16);
                var x = randn(new long[] { t, k }, ScalarType.BFloat16, device).requires_grad_(true);
                var dy = randn(new long[] { t, n }, ScalarType.BFloat16, device);
                void Step() { var y = layer.call(x); y.backward([dy]); }
                double steady = timeMs(Step, rangesOnly ? 1 : 20);
                // One call on an idle GPU, eight times: the host's enqueue time, then the time to completion.
                double host = 0, wall = 0;
                for (int r = 0; r < (rangesOnly ? 1 : 8); r++)
                {
                    using var s = NewDisposeScope();
                    runner.Synchronize();
                    var sw = Stopwatch.StartNew();
                    Step();
                    host += sw.Elapsed.TotalMilliseconds;
                    runner.Synchronize();
                    wall += sw.Elapsed.TotalMilliseconds;
                }
                (host, wall) = (host / (rangesOnly ? 1 : 8), wall / (rangesOnly ? 1 : 8));
                runner.Synchronize();
                runner.ProfilerRange(start: true);
                runner.Launch(marker, (long)index * KernelGeometry.GroupSize, [KernelArg.View(DeviceView.None)]);
                for (int r = 0; r < 2; r++) { using var s = NewDisposeScope(); Step(); }
                runner.Synchronize();
                runner.ProfilerRange(start: false);
                log($"profile {index,2} {label,-9} T {t,6} K {k,5} N {n,5}  {v.Name,-30} steady {steady,7:F3} ms  host enqueue {host,7:F3} ms  one call {wall,7:F3} ms");
                rows.Add(new { index, model = label, T = t, K = k, N = n, variant = v.Name, steady_ms = steady, host_enqueue_ms = host, one_call_ms = wall });
                layer.Dispose();
            }
        return new { rows, gemms = rangesOnly ? [] : GemmModes(device, timeMs, log) };
    }

    /// <summary>
    /// The host's side alone: <paramref name="iterations"/> forward+backward calls of each variant at a shape where the
    /// GPU waits for the host (ViT-small's 384×384 linear), for a sampling profiler (EventPipe, bench/gpu-profile.sh).
    /// </summary>
    public static void HostLoop(Device device, IReadOnlyList<LinearBench.Variant> variants, int iterations, Action<string> log)
    {
        const int t = 6400, k = 384, n = 384;
        foreach (var v in variants)
        {
            using var scope = NewDisposeScope();
            var layer = v.Build(k, n);
            layer.to(device);
            layer.to(ScalarType.BFloat16);
            var x = randn(new long[] { t, k }, ScalarType.BFloat16, device).requires_grad_(true);
            var dy = randn(new long[] { t, n }, ScalarType.BFloat16, device);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iterations; i++) { using var s = NewDisposeScope(); layer.call(x).backward([dy]); }
            CudaRunner.ForDevice(0).Synchronize();
            log($"host loop {v.Name,-30} {sw.Elapsed.TotalMilliseconds / iterations * 1000,8:F1} us per call ({iterations} calls)");
            layer.Dispose();
        }
    }

    /// <summary>The three GEMMs of each shape (forward, dgrad, wgrad as D [m, n] = A [m, k]·B [n, k]ᵀ) in BF16 and each FP8 scaling mode.</summary>
    static List<object> GemmModes(Device device, Func<Action, int, double> timeMs, Action<string> log)
    {
        var rows = new List<object>();
        if (Fp8Gemm.Unavailable(device) is { } why) { log($"profile gemm: FP8 unavailable ({why})"); return rows; }
        foreach (var (label, t, k, n) in Shapes)
            foreach (var (gemm, m, nn_, kk) in new[] { ("forward", t, n, k), ("dgrad", t, k, n), ("wgrad", n, k, t) })
            {
                using var scope = NewDisposeScope();
                var a = randn(new long[] { m, kk }, ScalarType.BFloat16, device);
                var b = randn(new long[] { nn_, kk }, ScalarType.BFloat16, device);
                double bf16 = timeMs(() => a.matmul(b.t()), 30);
                // Finite E4M3 codes (0x7F/0xFF are NaN): random bytes with bit 6 cleared keep every exponent below 15.
                var a8 = randint(0, 256, new long[] { m, kk }, ScalarType.Int32, device).bitwise_and(0xBF).to(ScalarType.Byte);
                var b8 = randint(0, 256, new long[] { nn_, kk }, ScalarType.Int32, device).bitwise_and(0xBF).to(ScalarType.Byte);
                var row = new Dictionary<string, object> { ["model"] = label, ["gemm"] = gemm, ["m"] = m, ["n"] = nn_, ["k"] = kk, ["bf16_ms"] = bf16 };
                string line = $"profile gemm {label,-9} {gemm,-7} m {m,6} n {nn_,5} k {kk,6}  bf16 {bf16,7:F3} ms";
                foreach (var scaling in new[] { Fp8Scaling.Group128, Fp8Scaling.OuterVector, Fp8Scaling.Tensor })
                {
                    var (sa, sb) = scaling switch
                    {
                        Fp8Scaling.Group128 => (ones(new long[] { kk / 128, m }, ScalarType.Float32, device), ones(new long[] { kk / 128, nn_ }, ScalarType.Float32, device)),
                        Fp8Scaling.OuterVector => (ones(m, ScalarType.Float32, device), ones(nn_, ScalarType.Float32, device)),
                        _ => (ones(1, ScalarType.Float32, device), ones(1, ScalarType.Float32, device)),
                    };
                    try
                    {
                        double ms = timeMs(() => Fp8Gemm.MultiplyScaled(a8, sa, b8, sb, ScalarType.BFloat16, scaling), 30);
                        row[$"fp8_{scaling}_ms"] = ms;
                        line += $"  {scaling} {ms,7:F3} ms ({bf16 / ms:F2}x)";
                    }
                    catch (Exception e) when (e is InvalidOperationException or NotSupportedException)
                    {
                        row[$"fp8_{scaling}_error"] = e.Message;
                        line += $"  {scaling}: {e.Message}";
                    }
                }
                log(line);
                rows.Add(row);
            }
        return rows;
    }
}
