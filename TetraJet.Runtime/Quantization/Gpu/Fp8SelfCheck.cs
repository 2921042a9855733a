using TetraJet.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// The CUDA checks of the FP8 operand kernels (<see cref="CudaFp8"/>) against the CPU reference: for every unflagged
/// line each element is exactly code × group scale of the reference's value; the flags are exactly the lines whose
/// 128-group spans more than 14 binades (<see cref="BrokenLines"/>, the rule's reference); flagged lines' side copies
/// are the reference's values; storage bytes are the reference's; NaN blocks have NaN codes; the patch kernel's
/// rows and columns equal the FP32 dot product of the reference values in its fixed order. Used by the GPU
/// benchmark's <c>test</c> command and the CUDA tests; the unit tests run the same checks through ILGPU's CPU accelerator.
/// </summary>
public static class Fp8SelfCheck
{
    const ulong Seed = 77;

    /// <summary>Every FP8 check on CUDA <paramref name="device"/> with the library's kernels.</summary>
    public static IEnumerable<GpuCheck> RunAll(Device device) => RunAll(device, CudaFp8.Launcher, small: false);

    /// <summary>
    /// Every FP8 check through <paramref name="launcher"/> on tensors of <paramref name="device"/>; <paramref name="small"/>
    /// shrinks the shapes (still several tiles, partial groups and padded rows) for slow launchers.
    /// </summary>
    public static IEnumerable<GpuCheck> RunAll(Device device, IFp8Launcher launcher, bool small)
    {
        int rows = small ? 130 : 1000, cols = small ? 160 : 1056, narrow = small ? 40 : 520, stored = small ? 130 : 777;
        foreach (var rule in new[] { ScaleRule.TetraJet, ScaleRule.Ocp })
            foreach (var rounding in Enum.GetValues<Rounding>())
                foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                {
                    var spec = new QuantSpec(QuantFormat.MXFP4, rounding, rule);
                    yield return Rows(device, launcher, spec, dtype, rows, cols);
                    yield return Columns(device, launcher, spec, dtype, rows, narrow);
                    if (rounding == Rounding.EmaGuided) continue;
                    yield return StoredColumns(device, launcher, spec, dtype, stored, cols);
                    yield return Dual(device, launcher, spec, dtype, rows, cols);
                }
        if (!small)
        {
            yield return Rows(device, launcher, new QuantSpec(QuantFormat.MXFP4), ScalarType.BFloat16, 4096, 4096);
            yield return Dual(device, launcher, new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic), ScalarType.BFloat16, 4100, 4096);
        }
        yield return Patch(device, launcher, ScalarType.Float32, small);
        yield return Patch(device, launcher, ScalarType.BFloat16, small);
    }

    /// <summary>
    /// Plants group spans into x along its lines (rows for the last axis, columns for the first): line 1 spans 30
    /// binades in each of its groups (one entry in the flag list all the same), line 3 exactly 14 (exact), line 4
    /// exactly 15 (broken), line 2 has a NaN block beside a span of 12 (not broken: non-finite blocks take no part),
    /// line 5 a zero first group. Lines 2–4 are written whole (amax 1, s = −2 under both rules) so that only the planted
    /// blocks set their spans.
    /// </summary>
    public static void Plant(float[] x, int rows, int cols, bool lastAxis)
    {
        int lines = lastAxis ? rows : cols, len = lastAxis ? cols : rows;
        void Set(int line, int pos, float v) { if (line < lines && pos < len) x[lastAxis ? line * cols + pos : pos * cols + line] = v; }
        void Block(int line, int block, float amax) { for (int k = 0; k < 32; k++) Set(line, block * 32 + k, amax * ((k % 7) - 3) / 3f); }
        for (int line = 2; line <= 4; line++)
            for (int b = 0; b * 32 < len; b++) Block(line, b, 1f);
        for (int g = 0; g * 128 < len; g++)
        {
            Block(1, 4 * g, MathF.Pow(2, 20));
            Block(1, 4 * g + 2, MathF.Pow(2, -10));
        }
        Block(3, 0, 6f * MathF.Pow(2, 4));
        Block(3, 1, 6f * MathF.Pow(2, -10));
        Block(4, 0, 6f * MathF.Pow(2, 4));
        Block(4, 2, 6f * MathF.Pow(2, -11));
        Block(2, 0, 1f);
        Block(2, 1, MathF.Pow(2, -12));
        Set(2, 70, float.NaN);
        for (int k = 0; k < Math.Min(128, len); k++) Set(5, k, 0f);
    }

    /// <summary>
    /// The reference of the flag rule: the lines of x with a 128-group (along the line) whose non-zero, finite MX blocks'
    /// exponents span more than <see cref="Fp8Operand.MaxSpan"/>.
    /// </summary>
    public static SortedSet<int> BrokenLines(float[] x, int rows, int cols, bool lastAxis, ScaleRule rule)
    {
        var broken = new SortedSet<int>();
        int lines = lastAxis ? rows : cols, len = lastAxis ? cols : rows;
        for (int line = 0; line < lines; line++)
            for (int g = 0; g < len; g += Fp8Operand.GroupLength)
            {
                int hi = int.MinValue, lo = int.MaxValue;
                for (int b = g; b < Math.Min(g + Fp8Operand.GroupLength, len); b += 32)
                {
                    float amax = 0; bool bad = false;
                    for (int k = b; k < Math.Min(b + 32, len); k++)
                    {
                        float v = x[lastAxis ? line * cols + k : k * cols + line];
                        if (!float.IsFinite(v)) bad = true;
                        else amax = Math.Max(amax, Math.Abs(v));
                    }
                    if (bad || amax == 0) continue;
                    int s = ScalarCore.MxExponent(amax, false, rule);
                    hi = Math.Max(hi, s);
                    lo = Math.Min(lo, s);
                }
                if (hi != int.MinValue && hi - lo > Fp8Operand.MaxSpan) broken.Add(line);
            }
        return broken;
    }

    static float[] Floats(Tensor t) => t.to(ScalarType.Float32).cpu().data<float>().ToArray();

    static float[] Rounded(float[] x, ScalarType dtype) => dtype == ScalarType.BFloat16 ? x.Select(v => Bf16.Widen(Bf16.Narrow(v))).ToArray() : x;

    /// <summary>An operand against the reference values ref(line, pos) and the expected broken lines; a failure names the first difference.</summary>
    static GpuCheck Operand(string name, Fp8Tensors o, Func<int, int, float> reference, SortedSet<int> broken)
    {
        var codes = o.Codes8.cpu().data<byte>().ToArray();
        var scales = o.Scales8.cpu().data<float>().ToArray();
        var side = Floats(o.Side);
        var list = o.FlaggedLines();
        var flagged = new SortedSet<int>(list);
        if (!flagged.SetEquals(broken))
            return new GpuCheck(name, false, $"flags {string.Join(",", flagged.Take(10))} expected {string.Join(",", broken.Take(10))}");
        if (list.Length != flagged.Count) return new GpuCheck(name, false, $"{list.Length} flag entries for {flagged.Count} lines (each is listed once)");
        long checkedCodes = 0, checkedSide = 0;
        for (int line = 0; line < o.Lines; line++)
            for (int pos = 0; pos < o.Length; pos++)
            {
                float q = reference(line, pos);
                byte code = codes[(long)line * o.Length + pos];
                float got = flagged.Contains(line) ? side[(long)line * o.Length + pos] : E4M3.Decode(code) * scales[pos / Fp8Operand.GroupLength * o.Lines + line];
                bool same = float.IsNaN(q) ? float.IsNaN(got) && code == Fp8Operand.NaNCode || flagged.Contains(line) && float.IsNaN(got)
                    : BitConverter.SingleToUInt32Bits(q) == BitConverter.SingleToUInt32Bits(got);
                if (!same) return new GpuCheck(name, false, $"[{line}, {pos}]{(flagged.Contains(line) ? " (side copy)" : $" code 0x{code:X2}")}: expected {q:R}, got {got:R}");
                if (flagged.Contains(line)) checkedSide++; else checkedCodes++;
            }
        return new GpuCheck(name, true, $"{checkedCodes} elements exact as code × scale, {flagged.Count} flagged lines ({checkedSide} side values) as the reference");
    }

    static GpuCheck Rows(Device device, IFp8Launcher launcher, QuantSpec spec, ScalarType dtype, int rows, int cols)
    {
        string name = $"FP8 rows {spec} {dtype} [{rows},{cols}] + storage";
        try
        {
            using var scope = NewDisposeScope();
            var x = GpuSelfCheck.Data(rows, cols, rows + cols);
            Plant(x, rows, cols, true);
            x = Rounded(x, dtype);
            var ema = spec.Rounding == Rounding.EmaGuided ? x.Select((v, i) => float.IsFinite(v) ? v * (1 + ((i % 7) - 3) * 0.03f) : 0f).ToArray() : null;
            var q = GpuSelfCheck.Expected(x, rows, cols, BlockAxis.Last, spec, Seed, 3, ema, false, false);
            var xt = tensor(x, new long[] { rows, cols }).to(dtype);
            var stored = PackedTensor.Allocate(spec, rows, cols, dtype, device);
            var o = launcher.Rows(xt.to(device), spec, Seed, 3, ema is null ? null : tensor(ema, new long[] { rows, cols }).to(device), stored);
            var result = Operand(name, o, (r, c) => q[r * cols + c], BrokenLines(x, rows, cols, true, spec.ScaleRule));
            using var reference = Quantizer.QuantizePacked(xt, spec, BlockAxis.Last, Seed, 3, ema is null ? null : tensor(ema, new long[] { rows, cols }));
            long bytes = reference.Codes.flatten().ne(stored.Codes.flatten().cpu()).sum().item<long>() + reference.Scales.flatten().ne(stored.Scales.flatten().cpu()).sum().item<long>();
            return new GpuCheck(name, result.Pass && bytes == 0, $"{result.Detail}; {bytes} storage bytes differ");
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    static GpuCheck Columns(Device device, IFp8Launcher launcher, QuantSpec spec, ScalarType dtype, int rows, int cols)
    {
        string name = $"FP8 columns (transposed) {spec} {dtype} [{rows},{cols}]";
        try
        {
            using var scope = NewDisposeScope();
            var x = GpuSelfCheck.Data(rows, cols, 2 * rows + cols);
            Plant(x, rows, cols, false);
            x = Rounded(x, dtype);
            var ema = spec.Rounding == Rounding.EmaGuided ? x.Select((v, i) => float.IsFinite(v) ? v * (1 + ((i % 5) - 2) * 0.04f) : 0f).ToArray() : null;
            var q = GpuSelfCheck.Expected(x, rows, cols, BlockAxis.First, spec, Seed, 5, ema, true, false);
            var o = launcher.Columns(tensor(x, new long[] { rows, cols }).to(dtype).to(device), spec, Seed, 5,
                ema is null ? null : tensor(ema, new long[] { rows, cols }).to(device));
            return Operand(name, o, (c, r) => r < rows ? q[r * cols + c] : 0f, BrokenLines(x, rows, cols, false, spec.ScaleRule));
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    static GpuCheck StoredColumns(Device device, IFp8Launcher launcher, QuantSpec target, ScalarType dtype, int rows, int cols)
    {
        string name = $"FP8 columns from MXFP4 storage {target} {dtype} [{rows},{cols}]";
        try
        {
            using var scope = NewDisposeScope();
            var source = new QuantSpec(QuantFormat.MXFP4);
            var x = Rounded(GpuSelfCheck.Data(rows, cols, rows * 5 + cols), dtype);
            // Rows 64–95 at 2^-30: the forward quantizer keeps their scale, so every column's first group spans ~30 binades.
            for (int r = 64; r < 96; r++)
                for (int c = 0; c < cols; c++) x[r * cols + c] *= MathF.Pow(2, -30);
            var (_, stored) = Quantizer.QuantizeStored(tensor(x, new long[] { rows, cols }).to(dtype).to(device), source);
            var values = Rounded(GpuSelfCheck.Expected(x, rows, cols, BlockAxis.Last, source, 0, 0, null, false, false), dtype);
            var q = GpuSelfCheck.Expected(values, rows, cols, BlockAxis.First, target, Seed, 6, null, true, false);
            var o = launcher.StoredColumns(stored, target, Seed, 6);
            return Operand(name, o, (c, r) => r < rows ? q[r * cols + c] : 0f, BrokenLines(values, rows, cols, false, target.ScaleRule));
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    static GpuCheck Dual(Device device, IFp8Launcher launcher, QuantSpec spec, ScalarType dtype, int rows, int cols)
    {
        string name = $"FP8 fused dY Q3 + Q5 {spec} {dtype} [{rows},{cols}]";
        try
        {
            using var scope = NewDisposeScope();
            var x = GpuSelfCheck.Data(rows, cols, rows + 3 * cols);
            Plant(x, rows, cols, true);
            Plant(x, rows, cols, false);
            x = Rounded(x, dtype);
            var q3 = GpuSelfCheck.Expected(x, rows, cols, BlockAxis.Last, spec, Seed, 7, null, false, false);
            var q5 = GpuSelfCheck.Expected(x, rows, cols, BlockAxis.First, spec, Seed, 8, null, true, false);
            var (o3, o5) = launcher.Dual(tensor(x, new long[] { rows, cols }).to(dtype).to(device), spec, Seed, 7, 8);
            var c3 = Operand(name + " Q3", o3, (r, c) => q3[r * cols + c], BrokenLines(x, rows, cols, true, spec.ScaleRule));
            var c5 = Operand(name + " Q5", o5, (c, r) => r < rows ? q5[r * cols + c] : 0f, BrokenLines(x, rows, cols, false, spec.ScaleRule));
            return new GpuCheck(name, c3.Pass && c5.Pass, "Q3: " + c3.Detail + "; Q5: " + c5.Detail);
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>
    /// The patch kernel after a stand-in GEMM (D filled with a marker): flagged rows of A and columns of B equal the FP32
    /// dot product of the reference values in the kernel's order (lane-strided partial sums, then a butterfly) plus the
    /// column's bias, rounded once; the rest keeps the marker.
    /// </summary>
    static GpuCheck Patch(Device device, IFp8Launcher launcher, ScalarType dtype, bool small)
    {
        int m = small ? 24 : 300, n = small ? 16 : 200, k = small ? 160 : 1056;
        string name = $"FP8 patch of flagged rows and columns {dtype} [{m},{n}] k={k}";
        try
        {
            using var scope = NewDisposeScope();
            var spec = new QuantSpec(QuantFormat.MXFP4, Rounding.Stochastic);
            var xa = GpuSelfCheck.Data(m, k, 31);
            var xb = GpuSelfCheck.Data(n, k, 32);
            Plant(xa, m, k, true);
            Plant(xb, n, k, true);
            xa = Rounded(xa, dtype);
            xb = Rounded(xb, dtype);
            var qa = GpuSelfCheck.Expected(xa, m, k, BlockAxis.Last, spec, Seed, 11, null, false, false);
            var qb = GpuSelfCheck.Expected(xb, n, k, BlockAxis.Last, spec, Seed, 12, null, false, false);
            var a = launcher.Rows(tensor(xa, new long[] { m, k }).to(dtype).to(device), spec, Seed, 11, null, null);
            var b = launcher.Rows(tensor(xb, new long[] { n, k }).to(dtype).to(device), spec, Seed, 12, null, null);
            var d = full(new long[] { m, n }, 12345f, dtype, device);
            // A bias as the forward GEMM's epilogue adds it: the patched elements carry it too.
            var biasValues = Rounded(GpuSelfCheck.Data(1, n, 33), dtype);
            launcher.Patch(d, a, b, k, tensor(biasValues).to(dtype).to(device));
            var got = Floats(d);
            var rowsA = new HashSet<int>(a.FlaggedLines());
            var rowsB = new HashSet<int>(b.FlaggedLines());
            if (rowsA.Count == 0 || rowsB.Count == 0) return new GpuCheck(name, false, "no flagged rows planted");
            int patched = 0;
            for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                {
                    float want = rowsA.Contains(r) || rowsB.Contains(j) ? KernelOrderDot(qa, r, qb, j, k) + biasValues[j] : 12345f;
                    if (dtype == ScalarType.BFloat16) want = Bf16.Widen(Bf16.Narrow(want));
                    float have = got[r * n + j];
                    bool same = float.IsNaN(want) ? float.IsNaN(have) : BitConverter.SingleToUInt32Bits(want) == BitConverter.SingleToUInt32Bits(have);
                    if (!same) return new GpuCheck(name, false, $"D[{r}, {j}] expected {want:R}, got {have:R}");
                    if (rowsA.Contains(r) || rowsB.Contains(j)) patched++;
                }
            return new GpuCheck(name, true, $"{patched} patched elements ({rowsA.Count} rows, {rowsB.Count} columns) as the reference order gives, the rest untouched");
        }
        catch (Exception e) { return new GpuCheck(name, false, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>The patch kernel's FP32 order on the host: lane L sums elements 4L … 4L + 3 of every 128, then a butterfly over the lanes.</summary>
    public static float KernelOrderDot(float[] a, int r, float[] b, int j, int k)
    {
        var lanes = new float[32];
        for (int lane = 0; lane < 32; lane++)
            for (int k0 = lane * 4; k0 < k; k0 += 128)
                for (int q = 0; q < 4 && k0 + q < k; q++) lanes[lane] += a[r * k + k0 + q] * b[j * k + k0 + q];
        for (int h = 16; h >= 1; h >>= 1)
        {
            var next = new float[32];
            for (int lane = 0; lane < 32; lane++) next[lane] = lanes[lane] + lanes[lane ^ h];
            lanes = next;
        }
        return lanes[0];
    }
}
