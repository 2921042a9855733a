using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// The unspecialised plan: the dataflow of any recipe, decided from the recipe when the plan is made (with
/// <see cref="Dataflow"/>, as the generator decides) and run with the library's kernel instantiations. What a layer
/// built from a recipe known only at run time runs; generated plans do the same steps as straight-line code.
/// </summary>
public sealed class DynamicPlan : LinearPlan
{
    readonly RowQuantizer? q1, q1Stored, q2, q2Stored, q2Ema, q2EmaStored, q3;
    readonly ColumnQuantizer? q4, q5, q6;
    readonly StoredColumnQuantizer? q4Stored, q6Stored;
    readonly DualQuantizer? q3q5;
    readonly bool keepsXhat, keepsWhat, padsTokens;
    // GemmPath.FP8: the same quantizers writing FP8 GEMM operands (CUDA).
    readonly Fp8RowQuantizer? f1, f2, f2Ema, f3;
    readonly Fp8ColumnQuantizer? f5;
    readonly Fp8DualQuantizer? f3f5;
    readonly Fp8StoredColumnQuantizer? f4, f6;

    public DynamicPlan(Recipe recipe) : base(recipe)
    {
        var r = recipe;
        // Backward re-quantizes the forward values X̂ and Ŵ (double quantization), so those are kept; the NVIDIA
        // recipe's Q6 starts from the original X, and a Direct source (no double quantization) from X or W.
        keepsXhat = r.Q6.Source == SlotSource.ForwardDequantized;
        keepsWhat = r.Q4.Source != SlotSource.Direct;
        if (r.Q1.IsQuantized)
        {
            q1 = RowQuantizer.Of(r.Q1.Spec, r.Q1.Hadamard);
            if (keepsXhat && Stores(r.Q1)) q1Stored = RowQuantizer.Of(r.Q1.Spec, stores: true);
        }
        if (r.Q2.IsQuantized)
        {
            q2 = RowQuantizer.Of(r.Q2.Spec, r.Q2.Hadamard);
            if (keepsWhat && Stores(r.Q2)) q2Stored = RowQuantizer.Of(r.Q2.Spec, stores: true);
            if (r.QEma)
            {
                var ema = r.Q2.Spec with { Rounding = Rounding.EmaGuided };
                q2Ema = RowQuantizer.Of(ema, r.Q2.Hadamard);
                if (q2Stored is not null) q2EmaStored = RowQuantizer.Of(ema, stores: true);
            }
        }
        if (FusesDy(r)) q3q5 = DualQuantizer.Of(r.Q3.Spec, r.Q3.Hadamard);
        else
        {
            if (r.Q3.IsQuantized) q3 = RowQuantizer.Of(r.Q3.Spec, r.Q3.Hadamard);
            if (r.Q5.IsQuantized) q5 = ColumnQuantizer.Of(r.Q5.Spec, r.Q5.Hadamard);
        }
        if (r.Q4.IsQuantized && r.Q4.Source != SlotSource.ForwardCodesTransposed)
        {
            q4 = ColumnQuantizer.Of(r.Q4.Spec, r.Q4.Hadamard);
            if (q2Stored is not null && ReadsStorage(r.Q2, r.Q4)) q4Stored = StoredColumnQuantizer.Of(r.Q2.Spec, r.Q4.Spec, r.Q4.Hadamard);
        }
        if (r.Q6.IsQuantized)
        {
            q6 = ColumnQuantizer.Of(r.Q6.Spec, r.Q6.Hadamard);
            if (q1Stored is not null && ReadsStorage(r.Q1, r.Q6)) q6Stored = StoredColumnQuantizer.Of(r.Q1.Spec, r.Q6.Spec, r.Q6.Hadamard);
        }
        padsTokens = r.Q5.Hadamard || r.Q6.Hadamard;
        if (r.Gemm == GemmPath.FP8 && Fp8Eligible(r, q1Stored is not null, q2Stored is not null, q4Stored is not null, q6Stored is not null))
        {
            f1 = Fp8RowQuantizer.Of(r.Q1.Spec, stores: true);
            f2 = Fp8RowQuantizer.Of(r.Q2.Spec, stores: true);
            if (r.QEma) f2Ema = Fp8RowQuantizer.Of(r.Q2.Spec with { Rounding = Rounding.EmaGuided }, stores: true);
            if (q3q5 is not null) f3f5 = Fp8DualQuantizer.Of(r.Q3.Spec);
            else
            {
                f3 = Fp8RowQuantizer.Of(r.Q3.Spec, stores: false);
                f5 = Fp8ColumnQuantizer.Of(r.Q5.Spec);
            }
            f4 = Fp8StoredColumnQuantizer.Of(r.Q2.Spec, r.Q4.Spec);
            f6 = Fp8StoredColumnQuantizer.Of(r.Q1.Spec, r.Q6.Spec);
        }
    }

    static bool Fp8Eligible(Recipe r, bool q1Kept, bool q2Kept, bool q4FromStorage, bool q6FromStorage) =>
        Dataflow.UsesFp8Gemms(new[] { r.Q1, r.Q2, r.Q3, r.Q4, r.Q5, r.Q6 }.All(s => Dataflow.Fp8Operand((int)s.Spec.Format, s.Spec.Tile16, s.Hadamard)),
            q1Kept, q2Kept, q4FromStorage, q6FromStorage, r.OutControl && r.Q1.IsQuantized);

    /// <summary>Whether <paramref name="recipe"/> runs FP8 GEMMs on CUDA (it asks for them and its configuration has them).</summary>
    public static bool RunsFp8Gemms(Recipe recipe) => recipe.Gemm == GemmPath.FP8 && PlanKey.Of(recipe).Fp8;

    /// <summary>The same rule without the request: whether the configuration's GEMMs could run in FP8.</summary>
    internal static bool Fp8Capable(Recipe r)
    {
        bool keepsX = r.Q6.Source == SlotSource.ForwardDequantized, keepsW = r.Q4.Source != SlotSource.Direct;
        bool q1Kept = r.Q1.IsQuantized && keepsX && Stores(r.Q1), q2Kept = r.Q2.IsQuantized && keepsW && Stores(r.Q2);
        bool q4 = q2Kept && r.Q4.IsQuantized && r.Q4.Source != SlotSource.ForwardCodesTransposed && ReadsStorage(r.Q2, r.Q4);
        bool q6 = q1Kept && r.Q6.IsQuantized && ReadsStorage(r.Q1, r.Q6);
        return Fp8Eligible(r, q1Kept, q2Kept, q4, q6);
    }

    /// <summary>Storage is kept for a forward slot when the format has one and no RHT is involved.</summary>
    static bool Stores(QuantizerSlot slot) => !slot.Hadamard && Dataflow.HasStorage((int)slot.Spec.Format, slot.Spec.Tile16);

    static bool ReadsStorage(QuantizerSlot source, QuantizerSlot target) =>
        Dataflow.ReadsStorage((int)source.Spec.Format, source.Spec.Tile16, (int)target.Spec.Format, target.Spec.Tile16, (int)target.Spec.Rounding);

    static bool FusesDy(Recipe r) => r.Q3.IsQuantized && r.Q5.IsQuantized && Dataflow.FusesDy(
        (int)r.Q3.Spec.Format, (int)r.Q3.Spec.Rounding, r.Q3.Spec.ScaleRule == ScaleRule.Ocp, r.Q3.Spec.Tile16, r.Q3.Hadamard,
        (int)r.Q5.Spec.Format, (int)r.Q5.Spec.Rounding, r.Q5.Spec.ScaleRule == ScaleRule.Ocp, r.Q5.Spec.Tile16, r.Q5.Hadamard);

    public override bool IsGenerated => false;

    public override Tensor Apply(QLinear layer, Tensor x) => Function.Run(layer, x, this);

    sealed class Function : LinearFunction<Function> { }

    int told;

    public override Tensor Forward(LinearStep s, Tensor x, Tensor w, Tensor? b)
    {
        if (Recipe.IsQuantized && Interlocked.Exchange(ref told, 1) == 0)
            Notices.Write($"TetraJet: recipe {Recipe.Name} ({PlanRegistry.Describe(PlanKey.Of(Recipe))}) has no generated plan in this program; " +
                "its layers run the unspecialised plan (same numbers, kernels chosen at run time). Declare the configuration with " +
                "[Quantize]/[QuantizeSlot] on a model class to generate its plan.");
        if (s.OutControl is { } oc) return ForwardParts(s, x, w, b, oc);
        if (f1 is not null && s.Fp8Gemms(x, w)) return ForwardFp8(s, x, w, b);
        var (xq, xStored) = q1 is null ? (x, null) : s.Quantize(q1, q1Stored, x, 1);
        var (wq, wStored) = QuantizeW(s, w, EmaFor(s));
        var y = s.Linear(s.Probe(1, xq), s.Probe(2, wq), b, xStored, wStored);
        s.Save(keepsXhat ? SavedOperand.Of(xq, xStored) : SavedOperand.Plain(x),
               keepsWhat ? SavedOperand.Of(wq, wStored) : SavedOperand.Plain(w));
        return y;
    }

    (Tensor Q, PackedTensor? Kept) QuantizeW(LinearStep s, Tensor w, Tensor? ema) =>
        q2 is null ? (w, null) : ema is null ? s.Quantize(q2, q2Stored, w, 2) : s.Quantize(q2Ema!, q2EmaStored, w, 2, ema);

    /// <summary>OutControl once its channels are fixed: the FP4 part through Q1/Q2 in its gathered blocks, the outlier part in MXFP8.</summary>
    Tensor ForwardParts(LinearStep s, Tensor x, Tensor w, Tensor? b, OutControlChannels oc)
    {
        var (xf, xo) = (OutControl.Gather(x, oc.Fp4), OutControl.Gather(x, oc.Outliers));
        var (wf, wo) = (OutControl.Gather(w, oc.Fp4), OutControl.Gather(w, oc.Outliers));
        var (xqf, xKeptF) = q1 is null ? (xf, null) : s.Quantize(q1, q1Stored, xf, 1);
        var ema = EmaFor(s);
        var (wqf, wKeptF) = QuantizeW(s, wf, ema is null ? null : OutControl.Gather(ema, oc.Fp4));
        var (xqo, xKeptO) = s.QuantizeOutliers(xo);
        var (wqo, wKeptO) = s.QuantizeOutliers(wo);
        var y = s.LinearParts(xqf, wqf, xqo, wqo, b, oc);
        s.Save(keepsXhat ? SavedOperand.Parts(SavedOperand.Of(xqf, xKeptF), SavedOperand.Of(xqo, xKeptO), oc) : SavedOperand.Parts(SavedOperand.Plain(xf), SavedOperand.Plain(xo), oc),
               keepsWhat ? SavedOperand.Parts(SavedOperand.Of(wqf, wKeptF), SavedOperand.Of(wqo, wKeptO), oc) : SavedOperand.Plain(w));
        return y;
    }

    /// <summary>GemmPath.FP8 on CUDA: the forward operands written as FP8 GEMM operands with their MXFP4 storage in one pass each.</summary>
    Tensor ForwardFp8(LinearStep s, Tensor x, Tensor w, Tensor? b)
    {
        var x1 = s.Fp8Rows(f1!, x, 1, null, out var xKept);
        var ema = EmaFor(s);
        var w2 = ema is null ? s.Fp8Rows(f2!, w, 2, null, out var wKept) : s.Fp8Rows(f2Ema!, w, 2, ema, out wKept);
        var y = s.Fp8Linear(x1, w2, b);
        s.Save(SavedOperand.Stored(xKept!), SavedOperand.Stored(wKept!));
        return y;
    }

    (Tensor Dx, Tensor Dw) BackwardFp8(LinearStep s, Tensor dy)
    {
        // Q4 and Q6 read only the storage forward kept: queued first, on the side stream, beside Q3 + Q5 and dgrad.
        var w4 = s.Fp8FromStored(f4!, s.SavedW!.Storage!, 4);
        var x6 = s.Fp8FromStored(f6!, s.SavedX!.Storage!, 6);
        var (dy3, dy5) = f3f5 is not null ? s.Fp8Dual(f3f5, dy) : (s.Fp8Rows(f3!, dy, 3, null, out _), s.Fp8Columns(f5!, dy, 5));
        var dx = s.Fp8Dgrad(dy3, w4.Ready());
        var dw = s.Fp8Wgrad(dy5, x6.Ready(), (int)dy.size(0));
        return (dx, dw);
    }

    Tensor? EmaFor(LinearStep s) => q2Ema is null ? null : s.EmaReady;

    public override (Tensor Dx, Tensor Dw) Backward(LinearStep s, Tensor dy)
    {
        if (s.UsesFp8) return BackwardFp8(s, dy);
        var d = s.Backend;
        var xs = s.SavedX!;
        var ws = s.SavedW!;
        long tokens = dy.size(0);
        // The RHT along T mixes padded rows with real ones, so the padding must exist before it (and in the GEMM).
        var dyT = padsTokens ? LinearStep.PadTokens16(dy) : dy;
        long rows = dyT.size(0);

        // Q4 and Q6 read only the storage forward kept: queued first (on CUDA, on the side stream), they run beside
        // Q3 + Q5 and the dgrad GEMM.
        var x6Source = xs.Fp4Part ?? xs;   // OutControl: Q6 covers the FP4 part
        var w4Stored = q4Stored is not null && ws.Storage is { } wst ? s.FromStored(q4Stored, wst, wst.Rows, 4) : null;
        var x6Stored = q6Stored is not null && x6Source.Storage is { } xst ? s.FromStored(q6Stored, xst, rows, 6) : null;

        Tensor dy3, dy5;
        if (q3q5 is not null)
        {
            var (a, c) = d.Dual(q3q5, dyT, s.Streams(3), s.Streams(5));
            (dy3, dy5) = (a.narrow(0, 0, tokens), c);
        }
        else
        {
            dy3 = q3 is null ? dy : d.Rows(q3, dy, s.Streams(3));
            dy5 = q5 is null ? dyT : d.Columns(q5, dyT, s.Streams(5), pad: true);
        }

        Tensor w4 = q4 is null ? ws.Value()
            : w4Stored is not null ? w4Stored.Ready()
            : d.Columns(q4, ws.Value(), s.Streams(4), pad: false);
        var dx = s.Dgrad(s.Probe(3, dy3), s.Probe(4, w4));

        Tensor x6 = q6 is null ? LinearStep.PadRows(x6Source.Value(), rows)
            : x6Stored is not null ? x6Stored.Ready()
            : d.Columns(q6, LinearStep.PadRows(x6Source.Value(), rows), s.Streams(6), pad: true);
        var dw = xs.Channels is { } oc
            ? s.WgradParts(s.Probe(5, dy5), s.Probe(6, x6), dy, xs.OutlierPart!.Value(), oc)
            : s.Wgrad(s.Probe(5, dy5), s.Probe(6, x6));
        return (dx, dw);
    }

}
