using System.Diagnostics;
using System.Text.Json;
using TetraJet;
using TetraJet.Quantization;
using TetraJet.Plans;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

// The GPU benchmark and check command: `test` (CUDA kernels against the CPU reference, ordering stress test),
// `quantize` (GB/s of each quantizer on 64M bf16 elements, beside a copy and torch eager ops), `linear`
// (QLinear forward+backward against nn.Linear), `profile` (host and per-kernel time of a linear: bench/gpu-profile.sh), `memory` (activation memory per layer; not in `all`: run it with
// PYTORCH_NO_CUDA_MEMORY_CACHING=1), `dp` (data parallelism through NCCL with a world of one; not in `all`), `all`,
// and `ptx --out DIR` (the quantizers' PTX, compiled on the CPU: no GPU needed).
// Results as JSON under --out (a directory, or a .json file).

string command = args.Length > 0 ? args[0] : "all";
string? outArg = null;
string[]? only = null;   // `test --only fp8,smoke`: the named groups of checks alone (a re-run after a fix)
HashSet<int>? profileRows = null;   // `profile --rows 2,3`: those rows alone (a detailed Nsight Compute run of a few)
int quantizeIterations = 50;         // `quantize --iterations 1`: each quantizer a few times (a run under Nsight Compute)
for (int i = 1; i < args.Length - 1; i++)
{
    if (args[i] == "--out") outArg = args[i + 1];
    if (args[i] == "--only") only = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    if (args[i] == "--iterations") quantizeIterations = int.Parse(args[i + 1]);
    if (args[i] == "--rows") profileRows = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToHashSet();
}

// PTX needs no GPU: it is compiled on the CPU (bench/sass-count.sh counts its instructions).
if (command is "ptx") return PtxDump.Run(outArg);

if (!cuda.is_available())
{
    Console.WriteLine("FAIL no CUDA device visible to torch");
    return 2;
}
var device = CUDA;
string deviceName = CudaRunner.DeviceName(0);
Console.WriteLine($"device: {deviceName}");
int failures = 0;

void Write(string name, object result)
{
    if (outArg is null) return;
    string path = outArg.EndsWith(".json", StringComparison.Ordinal) ? outArg : Path.Combine(outArg, name + ".json");
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    File.WriteAllText(path, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
}

if (command is "test" or "all") failures += RunTests();
if (command is "quantize" or "all") RunQuantize();
if (command is "linear" or "all") RunLinear();
if (command is "dp") failures += RunDataParallel();
if (command is "profile" && args.Contains("--host-loop")) ProfileBench.HostLoop(device, LinearVariants(), 3000, Console.WriteLine);
else if (command is "profile") Write("profile", new { device = deviceName, dtype = "bfloat16", profile = ProfileBench.Run(device, LinearVariants(), TimeMs, Console.WriteLine, args.Contains("--ranges-only"), profileRows) });
if (command is "gemm-algos") Write("gemm-algos", new { device = deviceName, rows = GemmAlgorithms.Run(device, TimeMs, Console.WriteLine) });
if (command is "memory") Write("memory", new { device = deviceName, T = 8192, K = 4096, N = 4096, dtype = "bfloat16", rows = MemoryBench.Run(device) });
if (command is not ("test" or "quantize" or "linear" or "memory" or "dp" or "profile" or "gemm-algos" or "all"))
{
    Console.WriteLine("usage: TetraJet.GpuBench test|quantize|linear|memory|dp|profile|gemm-algos|all|ptx [--out DIR|FILE.json] [--only GROUP,...] [--rows N,...] [--iterations N]");
    return 2;
}
return failures == 0 ? 0 : 1;

int RunTests()
{
    var results = new List<GpuCheck>();
    var sw = Stopwatch.StartNew();
    static IEnumerable<GpuCheck> Of(IEnumerable<(string Name, bool Pass, string Detail)> checks) => checks.Select(l => new GpuCheck(l.Name, l.Pass, l.Detail));
    var groups = new (string Name, Func<IEnumerable<GpuCheck>> Checks)[]
    {
        ("kernels", () => GpuSelfCheck.RunAll(device)),
        ("fp8-kernels", () => Fp8SelfCheck.RunAll(device)),
        ("linear", () => Of(LinearChecks.Run(device))),
        ("fp8", () => Of(Fp8Checks.Run(device))),
        ("memory", () => Of(MemoryChecks.Run(device))),
        ("smoke", () => Of(SmokeChecks.Run(device))),
        ("export", () => Of(ExportChecks.Run(device))),
        ("training", () => Of(TrainingChecks.Run(device))),
        ("noise", () => Of(NoiseChecks.Run(device))),
        ("oscillation", () => Of(OscillationChecks.Run(device))),
    };
    if (only?.FirstOrDefault(o => groups.All(g => g.Name != o)) is { } unknown)
    {
        Console.WriteLine($"FAIL unknown group '{unknown}' (groups: {string.Join(", ", groups.Select(g => g.Name))})");
        return 1;
    }
    foreach (var c in groups.Where(g => only is null || only.Contains(g.Name)).SelectMany(g => g.Checks()))
    {
        results.Add(c);
        Console.WriteLine($"{(c.Pass ? "PASS" : "FAIL")} {c.Name}: {c.Detail}");
    }
    int pass = results.Count(r => r.Pass), fail = results.Count - pass;
    Console.WriteLine($"test: {pass} PASS, {fail} FAIL in {sw.Elapsed.TotalSeconds:F1} s");
    Write("test", new { device = deviceName, pass, fail, checks = results });
    return fail;
}

int RunDataParallel()
{
    var results = new List<GpuCheck>();
    foreach (var (name, ok, detail) in DataParallelChecks.Run(device))
    {
        results.Add(new GpuCheck(name, ok, detail));
        Console.WriteLine($"{(ok ? "PASS" : "FAIL")} {name}: {detail}");
    }
    int pass = results.Count(r => r.Pass), fail = results.Count - pass;
    Console.WriteLine($"dp: {pass} PASS, {fail} FAIL");
    Write("dp", new { device = deviceName, pass, fail, checks = results });
    return fail;
}

void Sync() => CudaRunner.ForDevice(0).Synchronize();

double TimeMs(Action step, int iterations)
{
    for (int i = 0; i < 3; i++) { using var s = NewDisposeScope(); step(); }
    Sync();
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < iterations; i++) { using var s = NewDisposeScope(); step(); }
    Sync();
    return sw.Elapsed.TotalMilliseconds / iterations;
}

void RunQuantize()
{
    const long rows = 8192, cols = 8192;          // 64M elements
    long n = rows * cols;
    int iterations = quantizeIterations;
    using var scope = NewDisposeScope();
    var x = randn(new long[] { rows, cols }, ScalarType.BFloat16, device);
    var x32 = x.to(ScalarType.Float32);
    var copyTarget = empty_like(x);
    var rows_ = new List<object>();
    void Report(string name, Func<double> timeMs, long bytes, string note = "")
    {
        double ms;
        try { ms = timeMs(); }
        catch (Exception e)
        {
            Console.WriteLine($"quantize {name}: FAIL {e.GetType().Name}: {e.Message}");
            rows_.Add(new { name, error = e.Message });
            failures++;
            return;
        }
        double gbs = bytes / (ms * 1e-3) / 1e9;
        Console.WriteLine($"quantize {name,-44} {ms,8:F3} ms  {gbs,7:F0} GB/s  ({bytes / 1e6:F0} MB){(note.Length > 0 ? "  " + note : "")}");
        rows_.Add(new { name, ms, bytes, gbs, note });
    }
    long bf = n * 4;   // read 2 B + write 2 B per element
    Report("device-to-device copy (bf16)", () => TimeMs(() => copyTarget.copy_(x), iterations), bf);
    var cases = new (string name, QuantSpec spec, BlockAxis axis, bool rht)[]
    {
        ("MXFP4 RTN last axis", new(QuantFormat.MXFP4), BlockAxis.Last, false),
        ("MXFP4/ocp RTN last axis", new(QuantFormat.MXFP4, Rounding.Nearest, ScaleRule.Ocp), BlockAxis.Last, false),
        ("MXFP4 SR last axis", new(QuantFormat.MXFP4, Rounding.Stochastic), BlockAxis.Last, false),
        ("MXFP4 SR first axis", new(QuantFormat.MXFP4, Rounding.Stochastic), BlockAxis.First, false),
        ("MXFP8 RTN last axis", new(QuantFormat.MXFP8), BlockAxis.Last, false),
        ("NVFP4 (1x16 in 128) RTN last axis", new(QuantFormat.NVFP4), BlockAxis.Last, false),
        ("NVFP4 SR+RHT last axis", new(QuantFormat.NVFP4, Rounding.Stochastic), BlockAxis.Last, true),
        ("NVFP4 SR+RHT first axis", new(QuantFormat.NVFP4, Rounding.Stochastic), BlockAxis.First, true),
        ("NVFP4 per-tensor 1x16 RTN last axis", new(QuantFormat.NVFP4Tensor), BlockAxis.Last, false),
        ("NVFP4 per-tensor 16x16 RTN", new(QuantFormat.NVFP4Tensor, Rounding.Nearest, ScaleRule.TetraJet, true), BlockAxis.Last, false),
    };
    foreach (var c in cases)
    {
        long extra = c.spec.Format == QuantFormat.NVFP4Tensor ? n * 2 : 0;   // the amax pass reads x once more
        Report(c.name, () => TimeMs(() => Quantizer.Quantize(x, c.spec, c.axis, 1, 2, null, false, c.rht), iterations), bf + extra,
            extra > 0 ? "bytes include the amax pass" : "");
    }
    Report("MXFP4 RTN last axis (float32 in/out)", () => TimeMs(() => Quantizer.Quantize(x32, new QuantSpec(QuantFormat.MXFP4)), iterations), n * 8);
    var mxDual = DualQuantizer.Of(new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic));
    var nvDual = DualQuantizer.Of(new QuantSpec(QuantFormat.NVFP4, Rounding.Stochastic), hadamard: true);
    var backend = QuantBackend.For(device);
    Report("fused dY: MXFP4 SR Q3 (N) + Q5 (T)", () => TimeMs(() => backend.Dual(mxDual, x, new(1, 2, 0), new(1, 3, 0)), iterations), n * 6,
        "reads dY once, writes two outputs");
    Report("fused dY: NVFP4 SR+RHT Q3 (N) + Q5 (T)", () => TimeMs(() => backend.Dual(nvDual, x, new(1, 2, 0xB4D2), new(1, 3, 0x2D4B)), iterations), n * 6,
        "reads dY once, writes two outputs");
    // FP8 GEMM operands (MXFP4): bytes are those the kernel must move (bf16 in; E4M3 codes, FP32 group scales, packed
    // MXFP4 and E8M0 scales out); flag lists and side copies are empty on Gaussian data.
    var mxRtn = new QuantSpec(QuantFormat.MXFP4);
    var mxSr = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
    var stored = PackedTensor.Allocate(mxRtn, (int)rows, (int)cols, ScalarType.BFloat16, device);
    long fp8Out = n + n / 32;                       // codes8 + one FP32 scale per 128
    Report("FP8 operand rows MXFP4 RTN + packed (Q1/Q2)", () => TimeMs(() => CudaFp8.Rows(x, mxRtn, 1, 2, null, stored), iterations),
        2 * n + fp8Out + n / 2 + n / 32, "codes8, group scales, packed codes, E8M0 scales from one read");
    Report("FP8 operand rows MXFP4 SR (Q3 alone)", () => TimeMs(() => CudaFp8.Rows(x, mxSr, 1, 2), iterations), 2 * n + fp8Out);
    Report("FP8 operand first axis MXFP4 SR (Q5, transposed)", () => TimeMs(() => CudaFp8.Columns(x, mxSr, 1, 3), iterations), 2 * n + fp8Out);
    Report("FP8 operand first axis from MXFP4 storage SR (Q4/Q6)", () => TimeMs(() => CudaFp8.StoredColumns(stored, mxSr, 1, 4), iterations),
        n / 2 + n / 32 + fp8Out);
    Report("FP8 fused dY MXFP4 SR Q3 (N) + Q5 (T, transposed)", () => TimeMs(() => CudaFp8.Dual(x, mxSr, 1, 5, 6), iterations), 2 * n + 2 * fp8Out,
        "reads dY once, writes both operands");
    {
        var a = CudaFp8.Rows(x, mxRtn, 1, 2);
        var d = empty(new long[] { rows, rows }, ScalarType.BFloat16, device);
        Report("FP8 patch kernel, no flagged rows (launch cost)", () => TimeMs(() => CudaFp8.Patch(d, a, a, (int)cols), iterations), 8, "bytes: the two counts");
    }
    Report("torch eager composed MXFP4 RTN (approx.)", () => TimeMs(() => EagerMxfp4(x), Math.Min(10, iterations)), bf, "same traffic counted; numerics approximate");
    Write("quantize", new { device = deviceName, elements = n, dtype = "bfloat16", iterations, results = rows_ });
}

// MXFP4 from torch eager ops, blocks along the last axis: a timing baseline only (log2-based scale, torch.round
// ties, SR as floor(a/step + u)), not the spec's bits.
static Tensor EagerMxfp4(Tensor x, bool stochastic = false)
{
    var xf = x.to(ScalarType.Float32).reshape(-1, 32);
    var amax = xf.abs().amax(new long[] { 1 }, keepdim: true);
    var scale = (amax / 6).log2().ceil().clamp(-127, 127).exp2();
    var v = xf / scale;
    var a = v.abs().clamp_max(6);
    var step = a.clamp_min(1).log2().floor().clamp(0, 2).exp2() * 0.5;
    var q = (stochastic ? (a / step + rand_like(a)).floor() : (a / step).round()) * step;
    return (q * v.sign() * scale).view(x.shape).to(ScalarType.BFloat16);
}

// The six-quantizer TetraJet linear (forward and both gradients) composed from eager ops: what a user without the
// kernels would write. Timed like the layers: Q1, Q2, the forward GEMM, Q3/Q4 and the dgrad GEMM, Q5/Q6 (along T,
// through transposes) and the wgrad GEMM.
static void ComposedTetraJet(Tensor x, Tensor w, Tensor dy)
{
    var xq = EagerMxfp4(x);
    var wq = EagerMxfp4(w);
    _ = xq.matmul(wq.t());
    _ = EagerMxfp4(dy, true).matmul(EagerMxfp4(wq.t().contiguous(), true).t());
    _ = EagerMxfp4(dy.t().contiguous(), true).matmul(EagerMxfp4(xq.t().contiguous(), true).t());
}

List<LinearBench.Variant> LinearVariants()
{
    var variants = new List<LinearBench.Variant> { new("nn.Linear bf16", (k, n) => nn.Linear(k, n)) };
    foreach (var id in new[] { RecipeId.TetraJet, RecipeId.TetraJetV2 })
    {
        Recipe recipe = id;
        variants.Add(new($"QLinear {recipe.Name}", (k, n) => new QLinear(k, n, recipe)));
    }
    variants.Add(new("QLinear TetraJet, FP8 GEMMs", (k, n) => new QLinear(k, n, Recipe.Get(RecipeId.TetraJet) with { Gemm = GemmPath.FP8 })));
    // The same layers with Q4 and Q6 in line on torch's stream: what the side stream (QLinear.OverlapBackward) saves.
    foreach (var v in variants.Skip(1).ToList())
        variants.Add(new(v.Name + ", Q4/Q6 in line", (k, n) => { var layer = (QLinear)v.Build(k, n); layer.OverlapBackward = false; return layer; }));
    return variants;
}

void RunLinear()
{
    var variants = LinearVariants();
    foreach (var v in variants.Skip(1))
        if (IsPlainLinear((QLinear)v.Build(256, 256))) Console.WriteLine($"linear {v.Name}: NOT FP4 (QLinear gives a plain linear's output)");
    var results = LinearBench.Run(device, variants, TimeMs, Console.WriteLine);
    {
        const int T = 8192, K = 4096, N = 4096;
        using var scope = NewDisposeScope();
        var x = randn(new long[] { T, K }, ScalarType.BFloat16, device);
        var w = randn(new long[] { N, K }, ScalarType.BFloat16, device);
        var dy = randn(new long[] { T, N }, ScalarType.BFloat16, device);
        double ms = TimeMs(() => ComposedTetraJet(x, w, dy), 20);
        Console.WriteLine($"linear reference T {T} K {K} N {N}  {"TetraJet composed from eager ops",-44} {ms,8:F3} ms  (approximate numerics: a timing baseline)");
        results.Add(new { model = "reference", T, K, N, variant = "TetraJet composed from eager TorchSharp ops", ms, note = "approximate numerics" });
    }
    Write("linear", new { device = deviceName, dtype = "bfloat16", results });
}

// QLinear's numerics come from another part of the project: tell FP4 from a plain linear by comparing outputs.
bool IsPlainLinear(QLinear layer)
{
    using var scope = NewDisposeScope();
    using var _ = no_grad();
    layer.to(device);
    layer.to(ScalarType.BFloat16);
    var x = randn(new long[] { 64, layer.InFeatures }, ScalarType.BFloat16, device);
    return layer.call(x).eq(nn.functional.linear(x, layer.weight, layer.bias)).all().item<bool>();
}
