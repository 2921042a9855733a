using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TetraJet.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// One forward (and its backward) of one layer, as a plan sees it: the backend of the device, the random streams of
/// each slot, what forward keeps for backward, the GEMMs in the device's compute dtype, and the operand probe.
/// </summary>
public sealed class LinearStep
{
    internal LinearStep(QLinear layer, QuantBackend backend, long step, bool needsBackward, ScalarType inputType, Device device)
    {
        (Layer, Backend, Step, NeedsBackward, InputType) = (layer, backend, step, needsBackward, inputType);
        Autocast = layer.Autocast;
        ComputeType = Autocast ?? (device.type == DeviceType.CPU ? ScalarType.Float32 : inputType);
    }

    /// <summary>The layer's <see cref="QLinear.Autocast"/> when this forward ran (backward follows it, not a later setting).</summary>
    public ScalarType? Autocast { get; }

    public QLinear Layer { get; }
    public QuantBackend Backend { get; }
    /// <summary>The layer's training-forward count at this forward: the step part of every stream id.</summary>
    public long Step { get; }
    /// <summary>Whether backward will run (gradient mode on and something requires a gradient): else nothing is kept.</summary>
    public bool NeedsBackward { get; }
    public ScalarType InputType { get; }
    /// <summary>
    /// The layer's <see cref="QLinear.Autocast"/> dtype where set (the plan then also sees X, W and dY in it); else FP32
    /// on the CPU and the input's dtype on CUDA (BF16 GEMMs accumulate in FP32).
    /// </summary>
    public ScalarType ComputeType { get; }

    /// <summary>Whether forward keeps X̂ and Ŵ in storage form (the layer's choice) rather than dequantized.</summary>
    public bool KeepsStorage => NeedsBackward && Layer.PackSavedOperands;

    /// <summary>Q-EMA's EMA weight once it has warmed up (Q2 then rounds EMA-guided), else null.</summary>
    public Tensor? EmaReady => Layer.EmaReady ? Layer.EmaWeight : null;

    /// <summary>
    /// The random inputs of slot <paramref name="slot"/> (1–6) at this step (ALGORITHMS.md §6, <see cref="LayerStreams"/>):
    /// its SR stream, and the RHT signs its GEMM pair shares (Q1/Q2: forward, Q3/Q4: dgrad, Q5/Q6: wgrad). Under data
    /// parallelism the data slots' key folds in the layer's <see cref="QLinear.StreamRank"/> (<see cref="LayerStreams.KeyForRank"/>).
    /// </summary>
    public SlotStreams Streams(int slot)
    {
        // The diagnostic's second draw: another key, so independent SR draws and RHT signs for every slot.
        ulong seed = NoiseDraw ? Layer.Seed ^ LayerStreams.NoiseDrawKey : Layer.Seed;
        uint signs = slot switch
        {
            1 or 2 => Philox.HadamardSigns(seed, LayerStreams.For(Step, Layer.LayerId, LayerStreams.ForwardHadamard)),
            3 or 4 => Philox.HadamardSigns(seed, LayerStreams.For(Step, Layer.LayerId, LayerStreams.DgradHadamard)),
            5 or 6 => Philox.HadamardSigns(seed, LayerStreams.For(Step, Layer.LayerId, LayerStreams.WgradHadamard)),
            _ => 0u,
        };
        ulong key = LayerStreams.IsDataSlot(slot) ? LayerStreams.KeyForRank(seed, Layer.StreamRank) : seed;
        return new SlotStreams(key, LayerStreams.For(Step, Layer.LayerId, slot), signs);
    }

    /// <summary>
    /// Set while backward runs a second time for the gradient-to-noise diagnostic (<see cref="QLinear.SampleGradientNoise"/>):
    /// slots draw from their noise streams, and the probe and the FP8 counters do not see that pass.
    /// </summary>
    internal bool NoiseDraw { get; set; }

    // ---------------------------------------------------------------- kept for backward

    /// <summary>X̂ (or X) and Ŵ (or W) as forward kept them; owned here until backward releases them.</summary>
    public SavedOperand? SavedX { get; private set; }
    public SavedOperand? SavedW { get; private set; }

    /// <summary>Keeps the operands backward reads (nothing when no backward follows).</summary>
    public void Save(SavedOperand x, SavedOperand w)
    {
        if (!NeedsBackward) { x.Dispose(); w.Dispose(); return; }
        (SavedX, SavedW) = (x, w);
    }

    internal long SavedBytes => (SavedX?.Bytes ?? 0) + (SavedW?.Bytes ?? 0);

    internal void Release()
    {
        // Side work that was never waited for (an exception between its queueing and its use) still reads the storage.
        foreach (var work in side) work.Wait();
        side.Clear();
        SavedX?.Dispose();
        SavedW?.Dispose();
        SavedX = SavedW = null;
    }

    // ---------------------------------------------------------------- backward's side stream

    readonly List<ISideWork> side = [];

    /// <summary>
    /// Q4's or Q6's operand from what forward kept in storage form. It reads nothing backward computes, so on CUDA (with
    /// the layer's <see cref="QLinear.OverlapBackward"/>) it is queued on the device's side stream, to run beside Q3 + Q5
    /// and the dgrad GEMM; <see cref="SideResult{T}.Ready"/> orders its use after it.
    /// </summary>
    public SideResult<Tensor> FromStored(StoredColumnQuantizer q, PackedTensor source, long rows, int slot) =>
        Aside(source.Device, () => Backend.ColumnsFromStored(q, source, rows, Streams(slot)));

    /// <summary>Q4's or Q6's transposed FP8 operand from the forward operand's MXFP4 storage, queued as <see cref="FromStored"/>.</summary>
    public SideResult<Fp8Tensors> Fp8FromStored(Fp8StoredColumnQuantizer q, PackedTensor source, int slot) =>
        Aside(source.Device, () =>
        {
            var s = Streams(slot);
            return CudaFp8.StoredColumns(source, q.Spec, s.Seed, s.Stream, q.Gpu);
        });

    SideResult<T> Aside<T>(Device device, Func<T> work)
    {
        if (device.type != DeviceType.CUDA || !Layer.OverlapBackward || Backend is not CudaBackend) return new(work(), null, IntPtr.Zero);
        var runner = DeviceTensors.Runner(device);
        var (result, done) = runner.Aside(work);
        var queued = new SideResult<T>(result, runner, done);
        side.Add(queued);
        return queued;
    }

    // ---------------------------------------------------------------- the three GEMMs

    /// <summary>
    /// Forward GEMM: Y = X̂·Ŵᵀ + b, returned in the input's dtype. Where forward kept both operands in MXFP4 storage
    /// along K and the GPU has block-scaled FP4 tensor cores (<see cref="Gemm.Fp4Gemm"/>, compute capability 10.0 or
    /// newer), from the storage forms; else the GEMM in the compute dtype on X̂ and Ŵ (the same values).
    /// </summary>
    public Tensor Linear(Tensor xq, Tensor wq, Tensor? b, PackedTensor? xKept = null, PackedTensor? wKept = null)
    {
        UsesFp4 = xKept is not null && wKept is not null && xq.device_type == DeviceType.CUDA && Layer.Backend is null
            && Gemm.Fp4Gemm.Takes(xKept, wKept) && Gemm.Fp4Gemm.Unavailable(xq.device) is null;
        if (UsesFp4) return Gemm.Fp4Gemm.Multiply(xKept!, wKept!, ComputeType, b?.to(ComputeType)).to(InputType);
        return nn.functional.linear(xq.to(ComputeType), wq.to(ComputeType), b?.to(ComputeType)).to(InputType);
    }

    /// <summary>Whether this forward's GEMM ran on block-scaled FP4 tensor cores (the Blackwell slot, <see cref="Linear"/>).</summary>
    public bool UsesFp4 { get; private set; }

    /// <summary>Dgrad GEMM: dX = Q3(dY)·Q4(Ŵ), in the input's dtype.</summary>
    public Tensor Dgrad(Tensor dy3, Tensor w4) => dy3.to(ComputeType).matmul(w4.to(ComputeType)).to(InputType);

    /// <summary>Wgrad GEMM: dW = Q5(dY)ᵀ·Q6(X̂), in the weight's dtype.</summary>
    public Tensor Wgrad(Tensor dy5, Tensor x6) => dy5.to(ComputeType).t().matmul(x6.to(ComputeType)).to(Layer.weight.dtype);

    // ---------------------------------------------------------------- helpers of the dataflow

    /// <summary>
    /// A features-axis slot: with <paramref name="kept"/> (the storing variant of <paramref name="q"/>) and a backward
    /// that keeps storage, Q(x) and its storage form from one pass; else Q(x) alone.
    /// </summary>
    public (Tensor Q, PackedTensor? Kept) Quantize(RowQuantizer q, RowQuantizer? kept, Tensor x, int slot, Tensor? ema = null) =>
        kept is not null && KeepsStorage ? Backend.RowsStored(kept, x, Streams(slot), ema) : (Backend.Rows(q, x, Streams(slot), ema), null);

    // ---------------------------------------------------------------- OutControl (§5), once its channels are fixed

    /// <summary>The layer's OutControl channels once fixed, else null (the plan then runs its plain dataflow).</summary>
    public OutControlChannels? OutControl => Layer.OutControlChannels;

    static readonly RowQuantizer OutlierRows = RowQuantizer.Of(TetraJet.OutControl.OutlierSpec),
        OutlierRowsStored = RowQuantizer.Of(TetraJet.OutControl.OutlierSpec, stores: true);

    /// <summary>MXFP8 with RTN along K of a gathered outlier part of X or W, with its storage form when backward keeps storage.</summary>
    public (Tensor Q, PackedTensor? Kept) QuantizeOutliers(Tensor part) => Quantize(OutlierRows, OutlierRowsStored, part, slot: 0);

    /// <summary>
    /// Y = X̂_fp4·Ŵ_fp4ᵀ + X̂_out·Ŵ_outᵀ (+ b): two GEMMs in the compute dtype, summed in that order (as
    /// <see cref="TetraJet.OutControl.Product"/>); the probe sees slots 1 and 2 with the parts back in their channels.
    /// </summary>
    public Tensor LinearParts(Tensor xFp4, Tensor wFp4, Tensor xOutliers, Tensor wOutliers, Tensor? b, OutControlChannels channels)
    {
        if (Layer.OperandProbe is { } probe)
        {
            probe(1, TetraJet.OutControl.Mix(xFp4, xOutliers, channels));
            probe(2, TetraJet.OutControl.Mix(wFp4, wOutliers, channels));
        }
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(xFp4.to(ComputeType), wFp4.to(ComputeType));
        y.add_(nn.functional.linear(xOutliers.to(ComputeType), wOutliers.to(ComputeType)));
        if (b is not null) y.add_(b.to(ComputeType));
        return y.to(InputType).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// dW with OutControl: Q5(dY)ᵀ·Q6(X̂_fp4) for the FP4 channels and MXFP8(dY)ᵀ·MXFP8(X̂_out) (RTN along T, no RHT)
    /// for the outlier channels, each put back in its channels; in the weight's dtype. The probe sees the outlier
    /// product's operands as slots 7 (dY) and 8 (X̂_out).
    /// </summary>
    public Tensor WgradParts(Tensor dy5, Tensor x6, Tensor dy, Tensor xOutliers, OutControlChannels channels)
    {
        using var scope = NewDisposeScope();
        var (d8, x8) = TetraJet.OutControl.QuantizeOutlierWgradOperands(dy, xOutliers);
        Probe(7, d8);
        Probe(8, x8);
        var fp4 = dy5.to(ComputeType).t().matmul(x6.to(ComputeType));
        var outliers = d8.to(ComputeType).t().matmul(x8.to(ComputeType));
        return TetraJet.OutControl.Mix(fp4, outliers, channels).to(Layer.weight.dtype).MoveToOuterDisposeScope();
    }

    // ---------------------------------------------------------------- FP8 GEMMs (GemmPath.FP8, CUDA)

    /// <summary>Whether this forward, and so its backward, multiplies on FP8 tensor cores (<see cref="Fp8Gemms"/>).</summary>
    public bool UsesFp8 { get; private set; }

    /// <summary>
    /// Decides, at forward, whether this step takes the FP8 GEMMs: on a CUDA device whose FP8 GEMM passed its check
    /// (once per device, <see cref="Gemm.Fp8Gemm.Unavailable"/>), with shapes cuBLASLt's FP8 GEMM takes: T a multiple of
    /// 16, K and N of 128 (each is some GEMM's reduction axis). Otherwise the plan's BF16 dataflow runs, same operands.
    /// </summary>
    public bool Fp8Gemms(Tensor x, Tensor w)
    {
        long t = x.size(0), k = x.size(1), n = w.size(0);
        UsesFp8 = x.device_type == DeviceType.CUDA && t % 16 == 0 && k % Fp8Operand.GroupLength == 0 && n % Fp8Operand.GroupLength == 0
            && Layer.Backend is null && Gemm.Fp8Gemm.Unavailable(x.device) is null;
        return UsesFp8;
    }

    /// <summary>
    /// A features-axis slot's FP8 operand, with its MXFP4 storage from the same pass where <paramref name="q"/> stores
    /// (this path keeps X̂ and Ŵ in storage form whatever <see cref="QLinear.PackSavedOperands"/> says).
    /// </summary>
    public Fp8Tensors Fp8Rows(Fp8RowQuantizer q, Tensor x, int slot, Tensor? ema, out PackedTensor? kept)
    {
        kept = q.Stores ? PackedTensor.Allocate(q.Spec, (int)x.size(0), (int)x.size(1), x.dtype, x.device) : null;
        var s = Streams(slot);
        return CudaFp8.Rows(x, q.Spec, s.Seed, s.Stream, ema, kept, q.Gpu);
    }

    /// <summary>Q5's transposed FP8 operand from dY.</summary>
    public Fp8Tensors Fp8Columns(Fp8ColumnQuantizer q, Tensor dy, int slot)
    {
        var s = Streams(slot);
        return CudaFp8.Columns(dy, q.Spec, s.Seed, s.Stream, kernel: q.Gpu);
    }

    /// <summary>Q3's and Q5's FP8 operands from one read of dY.</summary>
    public (Fp8Tensors Q3, Fp8Tensors Q5) Fp8Dual(Fp8DualQuantizer q, Tensor dy)
    {
        var s3 = Streams(3);
        return CudaFp8.Dual(dy, q.Spec, s3.Seed, s3.Stream, Streams(5).Stream, q.Gpu);
    }

    /// <summary>
    /// D = A·Bᵀ (+ bias) on FP8 tensor cores, then the rows and columns of flagged lines recomputed exactly over
    /// <paramref name="k"/>; the patch also adds the two operands' flag counts to the layer's device counters (slots
    /// <paramref name="slotA"/>, <paramref name="slotB"/>), except in the diagnostic's second pass.
    /// </summary>
    Tensor Fp8Product(Fp8Tensors a, Fp8Tensors b, int k, int slotA, int slotB, Tensor? bias = null)
    {
        var counters = NoiseDraw ? null : Layer.Fp8Counters(a.Codes8.device);
        if (!NoiseDraw)
        {
            Layer.CountFp8Lines(slotA, a.Lines);
            Layer.CountFp8Lines(slotB, b.Lines);
        }
        var d = Gemm.Fp8Gemm.Multiply(a.Codes8, a.Scales8, b.Codes8, b.Scales8, a.Side.dtype, bias);
        CudaFp8.Patch(d, a, b, k, bias, counters, slotA, slotB);
        return d;
    }

    /// <summary>
    /// Forward on FP8 tensor cores: Y = Q1(X)·Q2(W)ᵀ + b, in the input's dtype. The bias goes through the GEMM (added in
    /// FP32, one rounding, as the BF16 path's fused bias) where its check passed, else it is added after the product.
    /// </summary>
    public Tensor Fp8Linear(Fp8Tensors x1, Fp8Tensors w2, Tensor? b)
    {
        Fp8Probe(1, x1, null);
        Fp8Probe(2, w2, null);
        using var scope = NewDisposeScope();
        var dtype = x1.Side.dtype;
        bool fused = b is not null && Gemm.Fp8Gemm.BiasInGemm(x1.Codes8.device);
        var y = Fp8Product(x1, w2, x1.Length, 1, 2, fused ? b!.to(dtype).contiguous() : null);
        if (b is not null && !fused) y.add_(b.to(dtype));
        return y.to(InputType).MoveToOuterDisposeScope();
    }

    /// <summary>Dgrad on FP8 tensor cores: dX = Q3(dY)·Q4(Ŵ), in the input's dtype.</summary>
    public Tensor Fp8Dgrad(Fp8Tensors dy3, Fp8Tensors w4)
    {
        Fp8Probe(3, dy3, null);
        Fp8Probe(4, w4, w4.Length);
        using var scope = NewDisposeScope();
        return Fp8Product(dy3, w4, dy3.Length, 3, 4).to(InputType).MoveToOuterDisposeScope();
    }

    /// <summary>Wgrad on FP8 tensor cores: dW = Q5(dY)ᵀ·Q6(X̂) over the <paramref name="tokens"/> real rows, in the weight's dtype.</summary>
    public Tensor Fp8Wgrad(Fp8Tensors dy5, Fp8Tensors x6, int tokens)
    {
        Fp8Probe(5, dy5, tokens);
        Fp8Probe(6, x6, tokens);
        using var scope = NewDisposeScope();
        return Fp8Product(dy5, x6, tokens, 5, 6).to(Layer.weight.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Hands an FP8 operand's values (code × group scale, the exact side copy on flagged lines) to the probe, in the
    /// layout the BF16 dataflow's operand has: transposed operands back to [rows, lines], <paramref name="rows"/> of them.
    /// </summary>
    void Fp8Probe(int slot, Fp8Tensors t, long? rows)
    {
        if (NoiseDraw || Layer.OperandProbe is not { } probe) return;
        using var scope = NewDisposeScope();
        var values = Fp8Values(t);
        probe(slot, rows is long r ? values.t().narrow(0, 0, r) : values);
    }

    static Tensor Fp8Values(Fp8Tensors t)
    {
        var table = tensor(Enumerable.Range(0, 256).Select(c => Formats.E4M3.Decode((byte)c)).ToArray()).to(t.Codes8.device);
        var values = table.index_select(0, t.Codes8.flatten().to(ScalarType.Int64)).view(t.Lines, t.Length);
        var scales = t.Scales8.t().repeat_interleave(Fp8Operand.GroupLength, dim: 1).narrow(1, 0, t.Length);
        values = values.mul(scales).to(t.Side.dtype);
        foreach (int line in t.FlaggedLines()) values[line] = t.Side[line];
        return values;
    }

    /// <summary>Zero rows appended up to <paramref name="rows"/> (the token axis' padding).</summary>
    public static Tensor PadRows(Tensor t, long rows) => rows == t.size(0) ? t : nn.functional.pad(t, [0, 0, 0, rows - t.size(0)]);

    /// <summary>dY with zero rows appended up to a multiple of 16 (the RHT along T mixes padded rows with real ones).</summary>
    public static Tensor PadTokens16(Tensor dy)
    {
        long t = dy.size(0), rows = (t + Hadamard.Size - 1) / Hadamard.Size * Hadamard.Size;
        return rows == t ? dy : nn.functional.pad(dy, [0, 0, 0, rows - t]);
    }

    /// <summary>Hands an operand to the layer's probe, if one is set (<see cref="QLinear.OperandProbe"/>); returns it.</summary>
    public Tensor Probe(int slot, Tensor operand)
    {
        if (!NoiseDraw) Layer.OperandProbe?.Invoke(slot, operand);
        return operand;
    }
}
