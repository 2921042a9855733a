using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Gemm;

/// <summary>
/// The Blackwell slot: D [m, n] = A [m, k]·B [n, k]ᵀ (+ bias) on block-scaled FP4 tensor cores through cuBLASLt, straight
/// from the MXFP4 storage form the row quantizers already write (ALGORITHMS.md §1): E2M1 codes two per byte, element 2i in
/// the low nibble (CUDA_R_4F_E2M1), and one E8M0 scale per 32 elements along k (VEC32_UE8M0), the scales rearranged
/// into cuBLASLt's tiled layout (<see cref="TiledScaleOffset"/>). The operands are the MXFP4 values themselves, so only
/// the accumulation differs from the BF16 GEMM on the dequantized operands.
/// </summary>
/// <remarks>
/// Selected by compute capability: <see cref="Unavailable"/> is null only on 10.0 or newer, after a small product has
/// matched an FP32 GEMM of the same operands; elsewhere the layer's other GEMM path runs (docs/GPU.md). Written against
/// cuBLASLt's documented block-scaled API (cuBLAS 12.8+); no Blackwell GPU was available to this project, so this path
/// has not run: on every GPU measured here (H100, H200) the capability check turns it off before any call.
/// </remarks>
public static unsafe class Fp4Gemm
{
    /// <summary>The first compute capability (major × 10 + minor) with block-scaled FP4 tensor cores: 10.0.</summary>
    public const int MinComputeCapability = 100;

    const int Block = 32;
    const long WorkspaceBytes = 32L << 20;
    static readonly Lock Gate = new();
    static readonly Dictionary<int, string?> Verdicts = new();
    static readonly Dictionary<(int Device, long M, long N, long K, ScalarType Out), Plan> Plans = new();
    static readonly Dictionary<int, (IntPtr Handle, Tensor Workspace)> Devices = new();

    sealed record Plan(IntPtr Desc, IntPtr A, IntPtr B, IntPtr D, CublasLt.HeuristicResult Algo);

    /// <summary>Why the slot is off on a device of compute capability <paramref name="capability"/> (major × 10 + minor), or null when it may run.</summary>
    public static string? CapabilityVerdict(int capability) => capability >= MinComputeCapability
        ? null
        : $"block-scaled FP4 GEMMs need compute capability {MinComputeCapability / 10}.{MinComputeCapability % 10} (Blackwell) or newer; this device has {capability / 10}.{capability % 10}";

    /// <summary>Null when the slot runs on <paramref name="device"/> (checked once), else the reason it does not.</summary>
    public static string? Unavailable(Device device)
    {
        if (device.type != DeviceType.CUDA) return "not a CUDA device";
        int ordinal = device.index < 0 ? 0 : device.index;
        lock (Gate)
            if (Verdicts.TryGetValue(ordinal, out var v)) return v;
        string? verdict;
        try
        {
            verdict = CapabilityVerdict(CudaRunner.ComputeCapability(ordinal))
                ?? (CublasLt.Available ? SelfCheck(device) : "libcublasLt is not loaded");
        }
        catch (Exception e) { verdict = $"{e.GetType().Name}: {e.Message}"; }
        lock (Gate) Verdicts[ordinal] = verdict;
        return verdict;
    }

    /// <summary>Whether a product of these two storage forms is one this slot takes: MXFP4 along the reduction axis, shapes cuBLASLt accepts.</summary>
    public static bool Takes(PackedTensor a, PackedTensor b) =>
        a.Spec.Format == QuantFormat.MXFP4 && b.Spec.Format == QuantFormat.MXFP4 && a.Axis == BlockAxis.Last && b.Axis == BlockAxis.Last
        && a.Cols == b.Cols && a.Cols % 128 == 0 && a.Rows % 16 == 0 && b.Rows % 16 == 0;

    /// <summary>
    /// D = A·Bᵀ (+ <paramref name="bias"/>, length n, added in FP32 before D's one rounding: C = the bias broadcast, β = 1)
    /// in <paramref name="output"/> (bfloat16 or float32), from MXFP4 storage forms along k (<see cref="Takes"/>).
    /// </summary>
    public static Tensor Multiply(PackedTensor a, PackedTensor b, ScalarType output, Tensor? bias = null)
    {
        if (!Takes(a, b)) throw new ArgumentException($"FP4 GEMM: expected MXFP4 storage along k with k a multiple of 128, got {a.Spec} [{a.Rows}, {a.Cols}] and {b.Spec} [{b.Rows}, {b.Cols}]");
        long m = a.Rows, n = b.Rows, k = a.Cols;
        using var scope = NewDisposeScope();
        var sa = TiledScales(a.Scales.view(m, k / Block));
        var sb = TiledScales(b.Scales.view(n, k / Block));
        var d = bias is null ? empty(new[] { m, n }, output, a.Device) : Quantization.Gpu.CudaFp8.BroadcastRows(bias.to(output), m);
        Run(a.Device, m, n, k, output, a.Codes, sa, b.Codes, sb, d, accumulate: bias is not null);
        return d.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Where the E8M0 scale of (row r, block c) sits in cuBLASLt's tiled layout for a [rows, cols] scale matrix (cols = k/32):
    /// tiles of 128 rows × 4 blocks, 512 bytes each, row-tiles outer and block-tiles inner, and inside a tile the byte at
    /// (r mod 32)·16 + (r / 32 mod 4)·4 + c mod 4. The matrix is padded to whole tiles.
    /// </summary>
    public static long TiledScaleOffset(int r, int c, int cols)
    {
        long tilesAcross = (cols + 3) / 4;
        long tile = r / 128 * tilesAcross + c / 4;
        return tile * 512 + r % 32 * 16 + r / 32 % 4 * 4 + c % 4;
    }

    /// <summary>Rearranges a [rows, cols] uint8 scale matrix into the tiled layout (<see cref="TiledScaleOffset"/>), zero-padded to whole tiles.</summary>
    public static Tensor TiledScales(Tensor scales)
    {
        long rows = scales.size(0), cols = scales.size(1);
        long tr = (rows + 127) / 128, tc = (cols + 3) / 4;
        var padded = nn.functional.pad(scales, [0, tc * 4 - cols, 0, tr * 128 - rows]);
        // [tr, 4, 32, tc, 4] (row = tile·128 + quarter·32 + lane) → [tr, tc, lane, quarter, 4]: the tile's byte order.
        return padded.view(tr, 4, 32, tc, 4).permute(0, 3, 2, 1, 4).contiguous().view(-1);
    }

    static void Run(Device device, long m, long n, long k, ScalarType output, Tensor a4, Tensor aScales, Tensor b4, Tensor bScales, Tensor d, bool accumulate)
    {
        int ordinal = device.index < 0 ? 0 : device.index;
        lock (Gate)
        {
            var (handle, workspace) = DeviceState(ordinal, device);
            // Column-major as in Fp8Gemm: cuBLASLt's A is our B (TRANSA = T), its B our A.
            IntPtr sa = TensorMemory.DataPointer(bScales), sb = TensorMemory.DataPointer(aScales);
            var key = (ordinal, m, n, k, output);
            if (!Plans.TryGetValue(key, out var plan)) Plans[key] = plan = Build(handle, m, n, k, output, sa, sb);
            CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(plan.Desc, CublasLt.DescAScalePointer, &sa, (nuint)sizeof(IntPtr)), "A scale pointer");
            CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(plan.Desc, CublasLt.DescBScalePointer, &sb, (nuint)sizeof(IntPtr)), "B scale pointer");
            float alpha = 1f, beta = accumulate ? 1f : 0f;
            var algo = plan.Algo;
            IntPtr dp = TensorMemory.DataPointer(d);
            CublasLt.Check(CublasLt.Matmul.Value(handle, plan.Desc, &alpha, TensorMemory.DataPointer(b4), plan.A, TensorMemory.DataPointer(a4), plan.B,
                &beta, dp, plan.D, dp, plan.D, algo.Algo, TensorMemory.DataPointer(workspace), (nuint)WorkspaceBytes, IntPtr.Zero), "cublasLtMatmul (FP4)");
        }
    }

    static (IntPtr, Tensor) DeviceState(int ordinal, Device device)
    {
        if (Devices.TryGetValue(ordinal, out var state)) return state;
        CublasLt.Check(CublasLt.Create.Value(out var handle), "cublasLtCreate");
        var workspace = empty(WorkspaceBytes, ScalarType.Byte, device).DetachFromDisposeScope();
        return Devices[ordinal] = (handle, workspace);
    }

    static Plan Build(IntPtr handle, long m, long n, long k, ScalarType output, IntPtr sa, IntPtr sb)
    {
        CublasLt.Check(CublasLt.MatmulDescCreate.Value(out var desc, CublasLt.Compute32F, CublasLt.R32F), "matmul descriptor");
        int transA = CublasLt.OpT, transB = CublasLt.OpN, mode = CublasLt.ScaleVec32UE8M0;
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescTransA, &transA, sizeof(int)), "TRANSA");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescTransB, &transB, sizeof(int)), "TRANSB");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescAScaleMode, &mode, sizeof(int)), "A scale mode (VEC32_UE8M0)");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescBScaleMode, &mode, sizeof(int)), "B scale mode (VEC32_UE8M0)");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescAScalePointer, &sa, (nuint)sizeof(IntPtr)), "A scale pointer");
        CublasLt.Check(CublasLt.MatmulDescSetAttribute.Value(desc, CublasLt.DescBScalePointer, &sb, (nuint)sizeof(IntPtr)), "B scale pointer");
        // Leading dimensions count elements (two per byte for FP4).
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var la, CublasLt.R4FE2M1, (ulong)k, (ulong)n, k), "A layout");
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var lb, CublasLt.R4FE2M1, (ulong)k, (ulong)m, k), "B layout");
        int outType = output == ScalarType.BFloat16 ? CublasLt.R16BF : CublasLt.R32F;
        CublasLt.Check(CublasLt.MatrixLayoutCreate.Value(out var ld, outType, (ulong)n, (ulong)m, n), "D layout");
        CublasLt.Check(CublasLt.PreferenceCreate.Value(out var pref), "preference");
        ulong ws = (ulong)WorkspaceBytes;
        CublasLt.Check(CublasLt.PreferenceSetAttribute.Value(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, sizeof(ulong)), "workspace size");
        CublasLt.HeuristicResult result;
        CublasLt.Check(CublasLt.AlgoGetHeuristic.Value(handle, desc, la, lb, ld, ld, pref, 1, &result, out int returned), "heuristic");
        if (returned == 0) throw new NotSupportedException($"cuBLASLt has no block-scaled FP4 algorithm for m = {m}, n = {n}, k = {k}");
        return new Plan(desc, la, lb, ld, result);
    }

    /// <summary>
    /// A 256×384×512 product of random MXFP4 operands (random codes, scales 2^-4 … 2^4) with a bias, in BF16 and FP32
    /// output, against an FP32 GEMM of the dequantized operands: null when they agree to FP4 accumulation's accuracy.
    /// </summary>
    static string? SelfCheck(Device device)
    {
        using var scope = NewDisposeScope();
        const int m = 256, n = 384, k = 512;
        var rng = new Random(5);
        PackedTensor Operand(int rows)
        {
            var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Nearest);
            var codes = Enumerable.Range(0, rows * k).Select(_ => (byte)rng.Next(16)).ToArray();
            var scales = Enumerable.Range(0, rows * k / Block).Select(_ => (byte)(127 + rng.Next(-4, 5))).ToArray();
            return PackedTensor.Pack(codes, scales, [], rows, k, BlockAxis.Last, spec);
        }
        using var a = Operand(m);
        using var b = Operand(n);
        var bias = tensor(Enumerable.Range(0, n).Select(_ => (float)rng.Next(-8, 9)).ToArray());
        var expected = a.Dequantize().matmul(b.Dequantize().t()) + bias;
        using var ad = a.To(device);
        using var bd = b.To(device);
        var failures = new List<string>();
        foreach (var output in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            try
            {
                var got = Multiply(ad, bd, output, bias.to(device)).cpu().to(ScalarType.Float32);
                double rel = ((got - expected).norm() / expected.norm()).item<float>();
                if (rel >= (output == ScalarType.BFloat16 ? 1e-2 : 1e-3)) failures.Add($"{output}: differs from FP32 by {rel:E2}: scale layout or enum values disagree with this cuBLASLt");
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { failures.Add($"{output}: {e.Message}"); }
        }
        return failures.Count == 0 ? null : $"cuBLASLt {Fp8Gemm.LibraryVersion}: " + string.Join("; ", failures);
    }
}
