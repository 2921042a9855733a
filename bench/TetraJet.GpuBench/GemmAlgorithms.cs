using TetraJet.Formats;
using TetraJet.Gemm;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// <c>GpuBench gemm-algos</c>: for the FP8 GEMMs of the reference and GPT-70m shapes, every algorithm cuBLASLt's
/// heuristic offers in the 1×128 and outer-vector scaling modes, timed (is the first, which the layers take, the
/// fastest?); whether outer-vector scaling gives the FP32 product of the decoded operands.
/// </summary>
static class GemmAlgorithms
{
    public static object Run(Device device, Func<Action, int, double> timeMs, Action<string> log)
    {
        var rows = new List<object>();
        if (Fp8Gemm.Unavailable(device) is { } why) { log($"gemm-algos: FP8 unavailable ({why})"); return rows; }
        var shapes = new (string Label, long M, long N, long K)[]
        {
            ("reference forward", 8192, 4096, 4096), ("reference wgrad", 4096, 4096, 8192),
            ("GPT-70m forward", 32768, 1536, 512), ("GPT-70m wgrad", 1536, 512, 32768),
        };
        foreach (var (label, m, n, k) in shapes)
        {
            using var scope = NewDisposeScope();
            var a = randn(new[] { m, k }, ScalarType.BFloat16, device);
            var b = randn(new[] { n, k }, ScalarType.BFloat16, device);
            double bf16 = timeMs(() => a.matmul(b.t()), 20);
            var a8 = randint(0, 256, new[] { m, k }, ScalarType.Int32, device).bitwise_and(0xBF).to(ScalarType.Byte);
            var b8 = randint(0, 256, new[] { n, k }, ScalarType.Int32, device).bitwise_and(0xBF).to(ScalarType.Byte);
            foreach (var scaling in new[] { Fp8Scaling.Group128, Fp8Scaling.OuterVector })
            {
                var (sa, sb) = scaling == Fp8Scaling.Group128
                    ? (ones(new[] { k / 128, m }, ScalarType.Float32, device), ones(new[] { k / 128, n }, ScalarType.Float32, device))
                    : (ones(m, ScalarType.Float32, device), ones(n, ScalarType.Float32, device));
                try
                {
                    var list = Fp8Gemm.Survey(a8, sa, b8, sb, scaling, 16, timeMs);
                    foreach (var c in list)
                        log($"gemm-algos {label,-18} m {m,6} n {n,5} k {k,6} bf16 {bf16,7:F3} ms  {scaling,-11} rank {c.Rank,2}  {c.Ms,7:F3} ms ({bf16 / c.Ms:F2}x)  waves {c.Waves:F2}  ws {c.Workspace >> 20} MiB{(c.Error is null ? "" : "  " + c.Error)}");
                    rows.Add(new { label, m, n, k, bf16_ms = bf16, scaling = scaling.ToString(), candidates = list });
                }
                catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { log($"gemm-algos {label} {scaling}: {e.Message}"); }
            }
        }
        log(OuterVectorCheck(device));
        return rows;
    }

    /// <summary>Outer-vector scaling against the FP32 GEMM of the decoded codes times random power-of-two row scales.</summary>
    static string OuterVectorCheck(Device device)
    {
        using var scope = NewDisposeScope();
        const int m = 256, n = 384, k = 512;
        var rng = new Random(5);
        byte Code() { byte c; do c = (byte)rng.Next(256); while ((c & 0x7F) == 0x7F); return c; }
        var a = Enumerable.Range(0, m * k).Select(_ => Code()).ToArray();
        var b = Enumerable.Range(0, n * k).Select(_ => Code()).ToArray();
        var sa = Enumerable.Range(0, m).Select(_ => MathF.ScaleB(1f, rng.Next(-6, 7))).ToArray();
        var sb = Enumerable.Range(0, n).Select(_ => MathF.ScaleB(1f, rng.Next(-6, 7))).ToArray();
        var av = new float[m * k]; var bv = new float[n * k];
        for (int r = 0; r < m; r++) for (int c = 0; c < k; c++) av[r * k + c] = E4M3.Decode(a[r * k + c]) * sa[r];
        for (int r = 0; r < n; r++) for (int c = 0; c < k; c++) bv[r * k + c] = E4M3.Decode(b[r * k + c]) * sb[r];
        var expected = tensor(av, m, k).matmul(tensor(bv, n, k).t());
        try
        {
            var got = Fp8Gemm.MultiplyScaled(tensor(a, m, k).to(device), tensor(sa).to(device), tensor(b, n, k).to(device), tensor(sb).to(device),
                ScalarType.Float32, Fp8Scaling.OuterVector).cpu();
            double rel = ((got - expected).norm() / expected.norm()).item<float>();
            return $"gemm-algos outer-vector scaling against FP32 of the decoded operands: relative error {rel:E2} ({(rel < 1e-3 ? "agrees" : "DISAGREES")})";
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { return $"gemm-algos outer-vector check: {e.Message}"; }
    }
}
