using TetraJet.Formats;
using TetraJet.Interop;
using TetraJet.Plans;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Gemm;

/// <summary>
/// D [m, n] = A [m, k] · B [n, k]ᵀ on FP8 tensor cores through cuBLASLt: A and B are E4M3 codes (uint8 tensors,
/// row-major, k contiguous) with one FP32 power-of-two scale per (row, 128-group along k), stored group-major
/// ([k/128, rows]). This is how exact MXFP4 operands reach Hopper's FP8 GEMM (ALGORITHMS.md §4, docs/GPU.md): the codes
/// times their group scales are the operands' values bit for bit; only the accumulation differs from a BF16 GEMM
/// (Hopper's FP8 MMA promotes partial sums periodically; fast accumulation stays off).
/// </summary>
/// <remarks>
/// cuBLASLt is column-major: D row-major [m, n] is Dᵀ column-major, computed as B·Aᵀ with TRANSA = T, TRANSB = N (the
/// only FP8 layout Hopper runs). On first use per device a small product is checked against an FP32 GEMM of the same
/// operands; if cuBLASLt rejects the scaling mode or disagrees, FP8 is off for the process and <see cref="Unavailable"/>
/// says why; callers then take their BF16 GEMM.
/// </remarks>
public static unsafe partial class Fp8Gemm
{
    const int Group = 128;
    const long WorkspaceBytes = 32L << 20;

    static readonly Lock Gate = new();
    static readonly Dictionary<(int Device, long M, long N, long K, ScalarType Out, Fp8Scaling Scaling), Plan> Plans = new();
    static readonly Dictionary<int, (IntPtr Handle, Tensor Workspace)> Devices = new();
    static readonly Dictionary<int, string?> Verdicts = new();
    static readonly Dictionary<int, bool> BiasVerdicts = new();

    sealed record Plan(IntPtr Desc, IntPtr A, IntPtr B, IntPtr D, CublasLt.HeuristicResult Algo);

    /// <summary>
    /// Null when FP8 GEMMs run on <paramref name="device"/> (checked once against an FP32 GEMM), else the reason they do not.
    /// </summary>
    public static string? Unavailable(Device device)
    {
        int ordinal = device.index < 0 ? 0 : device.index;
        lock (Gate)
        {
            if (Verdicts.TryGetValue(ordinal, out var v)) return v;
            Verdicts[ordinal] = "checking";
        }
        string? verdict;
        try { verdict = SelfCheck(device); }
        catch (Exception e) { verdict = $"{e.GetType().Name}: {e.Message}"; }
        lock (Gate) Verdicts[ordinal] = verdict;
        if (verdict is not null) Notices.Write($"TetraJet: FP8 GEMMs are off on {device} ({verdict}); MXFP4 layers use BF16 GEMMs on the same operands.");
        return verdict;
    }

    /// <summary>
    /// Whether <see cref="Multiply"/> takes a bias on <paramref name="device"/>: the GEMM starts from C = the bias broadcast
    /// over the rows (β = 1) and adds it in FP32 before the one rounding to the output type, as the BF16 path's fused bias
    /// does (checked with the GEMM, <see cref="Unavailable"/>). Otherwise callers add it themselves after the product.
    /// </summary>
    /// <remarks>
    /// Not the bias epilogue: with 1×128 block scaling it failed this check (cuBLASLt 13.1 on an H200). C costs a write of
    /// D before the GEMM and a read inside it; the separate broadcast add it replaces ran at about a third of copy
    /// bandwidth (docs/BENCHMARKS.md, the per-kernel profile) and rounded twice.
    /// </remarks>
    public static bool BiasInGemm(Device device)
    {
        if (Unavailable(device) is not null) return false;
        lock (Gate) return BiasVerdicts.GetValueOrDefault(device.index < 0 ? 0 : device.index);
    }

    /// <summary>The cuBLASLt version (e.g. 130100), or 0 when the library is not loaded.</summary>
    public static long LibraryVersion => CublasLt.Available ? (long)CublasLt.GetVersion.Value() : 0;

    /// <summary>
    /// D = A·Bᵀ (+ <paramref name="bias"/>, length n, in the output type, where <see cref="BiasInGemm"/> holds; see the
    /// class remarks); <paramref name="output"/> is bfloat16 or float32.
    /// </summary>
    public static Tensor Multiply(Tensor a8, Tensor aScales, Tensor b8, Tensor bScales, ScalarType output, Tensor? bias = null)
    {
        long m = a8.size(0), n = b8.size(0), k = a8.size(1);
        if (b8.size(1) != k) throw new ArgumentException($"FP8 GEMM: A is [{m}, {k}], B is [{n}, {b8.size(1)}]");
        if (k % Group != 0 || m % 16 != 0 || n % 16 != 0)
            throw new ArgumentException($"FP8 GEMM: k = {k} must be a multiple of {Group}, m = {m} and n = {n} of 16");
        if (bias is not null && (bias.dtype != output || bias.numel() != n || !bias.is_contiguous()))
            throw new ArgumentException($"FP8 GEMM: the bias must be a contiguous {output} vector of {n}");
        var device = a8.device;
        var d = bias is null ? empty(new[] { m, n }, output, device) : Quantization.Gpu.CudaFp8.BroadcastRows(bias, m);
        Run(device, m, n, k, output, a8, aScales, b8, bScales, d, Fp8Scaling.Group128, accumulate: bias is not null);
        return d;
    }

    /// <summary>
    /// As <see cref="Multiply"/> with another of cuBLASLt's scaling modes, for the benchmark that chooses the mode
    /// (<c>GpuBench profile</c>): <paramref name="aScales"/> and <paramref name="bScales"/> hold one FP32 per row
    /// (<see cref="Fp8Scaling.OuterVector"/>) or one per operand (<see cref="Fp8Scaling.Tensor"/>).
    /// </summary>
    internal static Tensor MultiplyScaled(Tensor a8, Tensor aScales, Tensor b8, Tensor bScales, ScalarType output, Fp8Scaling scaling)
    {
        long m = a8.size(0), n = b8.size(0), k = a8.size(1);
        var d = empty(new[] { m, n }, output, a8.device);
        Run(a8.device, m, n, k, output, a8, aScales, b8, bScales, d, scaling);
        return d;
    }

    static void Run(Device device, long m, long n, long k, ScalarType output, Tensor a8, Tensor aScales, Tensor b8, Tensor bScales, Tensor d,
        Fp8Scaling scaling, bool accumulate = false)
    {
        int ordinal = device.index < 0 ? 0 : device.index;
        Plan plan;
        IntPtr handle;
        Tensor workspace;
        lock (Gate)
        {
            (handle, workspace) = DeviceState(ordinal, device);
            // cuBLASLt's A is our B (n rows, TRANSA = T) and its B is our A (m columns after TRANSB = N).
            IntPtr sa = TensorMemory.DataPointer(bScales), sb = TensorMemory.DataPointer(aScales);
            var key = (ordinal, m, n, k, output, scaling);
            if (!Plans.TryGetValue(key, out plan!)) Plans[key] = plan = Build(handle, m, n, k, output, sa, sb, scaling);
            CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(plan.Desc, CublasLt.DescAScalePointer, &sa, (nuint)sizeof(IntPtr)), "A scale pointer");
            CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(plan.Desc, CublasLt.DescBScalePointer, &sb, (nuint)sizeof(IntPtr)), "B scale pointer");
            // β = 1 adds C (D's own contents, in place) in FP32 before D's rounding.
            float alpha = 1f, beta = accumulate ? 1f : 0f;
            var algo = plan.Algo;
            IntPtr dp = TensorMemory.DataPointer(d);
            CublasLt.Check(CublasLt.Matmul.Value(handle, plan.Desc, &alpha, TensorMemory.DataPointer(b8), plan.A, TensorMemory.DataPointer(a8), plan.B,
                &beta, dp, plan.D, dp, plan.D, algo.Algo, TensorMemory.DataPointer(workspace), (nuint)WorkspaceBytes, IntPtr.Zero), "cublasLtMatmul");
        }
    }

    static (IntPtr, Tensor) DeviceState(int ordinal, Device device)
    {
        if (Devices.TryGetValue(ordinal, out var state)) return state;
        if (!CublasLt.Available) throw new InvalidOperationException("libcublasLt is not loaded in this process");
        CublasLt.Check(CublasLt.Create.Value(out var handle), "cublasLtCreate");
        var workspace = empty(WorkspaceBytes, ScalarType.Byte, device).DetachFromDisposeScope();
        return Devices[ordinal] = (handle, workspace);
    }

    /// <remarks>
    /// The scale pointers are set before the heuristic query: with block scaling cuBLASLt validates the descriptor
    /// there, and a descriptor with a block scale mode but no scale pointer is rejected as an invalid value.
    /// </remarks>
    static Plan Build(IntPtr handle, long m, long n, long k, ScalarType output, IntPtr sa, IntPtr sb, Fp8Scaling scaling)
    {
        CublasLt.Check(CublasLt.MatmulDescCreate.Value(out var desc, CublasLt.Compute32F, CublasLt.R32F), "matmul descriptor");
        int transA = CublasLt.OpT, transB = CublasLt.OpN;
        int mode = scaling switch
        {
            Fp8Scaling.OuterVector => CublasLt.ScaleOuterVec32F,
            Fp8Scaling.Tensor => CublasLt.ScaleScalar32F,
            _ => CublasLt.ScaleVec128_32F,
        };
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescTransA, &transA, sizeof(int)), "TRANSA");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescTransB, &transB, sizeof(int)), "TRANSB");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescAScaleMode, &mode, sizeof(int)), $"A scale mode ({scaling})");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescBScaleMode, &mode, sizeof(int)), $"B scale mode ({scaling})");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescAScalePointer, &sa, (nuint)sizeof(IntPtr)), "A scale pointer");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescBScalePointer, &sb, (nuint)sizeof(IntPtr)), "B scale pointer");
        int outType = output == ScalarType.BFloat16 ? CublasLt.R16BF : CublasLt.R32F;
        // Column-major: our B [n, k] row-major is k×n (ld k), our A [m, k] is k×m (ld k), D [m, n] row-major is n×m (ld n).
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var la, CublasLt.R8FE4M3, (ulong)k, (ulong)n, k), "A layout");
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var lb, CublasLt.R8FE4M3, (ulong)k, (ulong)m, k), "B layout");
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var ld, outType, (ulong)n, (ulong)m, n), "D layout");
        CublasLt.Check(CublasLt.PreferenceCreate.Value(out var pref), "preference");
        ulong ws = (ulong)WorkspaceBytes;
        CublasLt.Check(CublasLt.PreferenceSetAttribute.Value(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, sizeof(ulong)), "workspace size");
        CublasLt.HeuristicResult result;
        CublasLt.Check(CublasLt.AlgoGetHeuristic.Value(handle, desc, la, lb, ld, ld, pref, 1, &result, out int returned), "heuristic");
        if (returned == 0) throw new NotSupportedException($"cuBLASLt has no FP8 algorithm with {scaling} scaling for m = {m}, n = {n}, k = {k}");
        return new Plan(desc, la, lb, ld, result);
    }

    /// <summary>E4M3 code → value, for the check.</summary>
    static readonly float[] E4M3Values = Enumerable.Range(0, 256).Select(c => E4M3.Decode((byte)c)).ToArray();

    /// <summary>
    /// A 256×384×512 product of random finite E4M3 codes with random power-of-two group scales against the FP32 GEMM of
    /// the decoded operands: null when they agree to FP8 accumulation's accuracy.
    /// </summary>
    static string? SelfCheck(Device device)
    {
        if (device.type != DeviceType.CUDA) return "not a CUDA device";
        if (!CublasLt.Available) return "libcublasLt is not loaded";
        int capability = Quantization.Gpu.CudaRunner.ComputeCapability(device.index < 0 ? 0 : device.index);
        // The operand kernels convert to FP8 with sm_90 instructions, and cuBLASLt's 1×128 scaling is sm_90's too.
        if (capability < 90) return $"compute capability {capability / 10}.{capability % 10}: the FP8 path needs 9.0 or newer";
        using var scope = NewDisposeScope();
        const int m = 256, n = 384, k = 512;
        var rng = new Random(3);
        byte Code() { byte c; do c = (byte)rng.Next(256); while ((c & 0x7F) == 0x7F); return c; }
        var a = Enumerable.Range(0, m * k).Select(_ => Code()).ToArray();
        var b = Enumerable.Range(0, n * k).Select(_ => Code()).ToArray();
        var sa = Enumerable.Range(0, m * k / Group).Select(_ => MathF.ScaleB(1f, rng.Next(-6, 7))).ToArray();
        var sb = Enumerable.Range(0, n * k / Group).Select(_ => MathF.ScaleB(1f, rng.Next(-6, 7))).ToArray();
        // Reference: decoded values times their group scale (group-major scales: [k/128, rows]).
        var av = new float[m * k]; var bv = new float[n * k];
        for (int r = 0; r < m; r++) for (int c = 0; c < k; c++) av[r * k + c] = E4M3Values[a[r * k + c]] * sa[c / Group * m + r];
        for (int r = 0; r < n; r++) for (int c = 0; c < k; c++) bv[r * k + c] = E4M3Values[b[r * k + c]] * sb[c / Group * n + r];
        var expected = tensor(av, m, k).matmul(tensor(bv, n, k).t());
        var failures = new List<string>();
        foreach (var output in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            try
            {
                var got = Multiply(tensor(a, m, k).to(device), tensor(sa).to(device), tensor(b, n, k).to(device), tensor(sb).to(device), output)
                    .cpu().to(ScalarType.Float32);
                double rel = ((got - expected).norm() / expected.norm()).item<float>();
                double bound = output == ScalarType.BFloat16 ? 1e-2 : 1e-3;
                if (rel >= bound) failures.Add($"{output}: the test product differs from FP32 by {rel:E2} (relative): scale layout or enum values disagree with this cuBLASLt");
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { failures.Add($"{output}: {e.Message}"); }
        }
        if (failures.Count > 0) return $"cuBLASLt {LibraryVersion}: " + string.Join("; ", failures);
        // The bias through C, checked apart: without it the GEMMs still run and callers add the bias themselves.
        var bias = Enumerable.Range(0, n).Select(_ => MathF.ScaleB(rng.Next(-8, 9), rng.Next(-2, 3))).ToArray();
        var withBias = expected + tensor(bias);
        bool fused = true;
        string? why = null;
        foreach (var output in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            try
            {
                var got = Multiply(tensor(a, m, k).to(device), tensor(sa).to(device), tensor(b, n, k).to(device), tensor(sb).to(device), output,
                    tensor(bias).to(output).to(device)).cpu().to(ScalarType.Float32);
                double rel = ((got - withBias).norm() / withBias.norm()).item<float>();
                if (rel >= (output == ScalarType.BFloat16 ? 1e-2 : 1e-3)) { fused = false; why ??= $"{output}: differs from FP32 by {rel:E2}"; }
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { fused = false; why ??= $"{output}: {e.Message}"; }
        }
        lock (Gate) BiasVerdicts[device.index < 0 ? 0 : device.index] = fused;
        if (!fused) Notices.Write($"TetraJet: the FP8 GEMM with the bias as C (β = 1) failed its check on {device} ({why}); the bias is added after the product.");
        return null;
    }
}

/// <summary>cuBLASLt's FP8 scaling modes the benchmark compares; the layers use <see cref="Group128"/> (exact MXFP4 operands).</summary>
internal enum Fp8Scaling
{
    /// <summary>One FP32 per row and 128 elements of k (VEC128_32F).</summary>
    Group128,
    /// <summary>One FP32 per row (OUTER_VEC_32F).</summary>
    OuterVector,
    /// <summary>One FP32 per operand (SCALAR_32F): an unscaled GEMM whose scale a later epilogue would apply.</summary>
    Tensor,
}
