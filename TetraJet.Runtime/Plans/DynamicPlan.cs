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
        var (xq, xStored) = q1 is null ? (x, null) : s.Quantize(q1, q1Stored, x, 1);
        var (wq, wStored) = QuantizeW(s, w, EmaFor(s));
        var y = s.Linear(s.Probe(1, xq), s.Probe(2, wq), b);
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

    Tensor? EmaFor(LinearStep s) => q2Ema is null ? null : s.EmaReady;

    public override (Tensor Dx, Tensor Dw) Backward(LinearStep s, Tensor dy)
    {
        var d = s.Backend;
        var xs = s.SavedX!;
        var ws = s.SavedW!;
        long tokens = dy.shape[0];
        // The RHT along T mixes padded rows with real ones, so the padding must exist before it (and in the GEMM).
        var dyT = padsTokens ? LinearStep.PadTokens16(dy) : dy;

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
            : q4Stored is not null && ws.Storage is { } wst ? d.ColumnsFromStored(q4Stored, wst, wst.Rows, s.Streams(4))
            : d.Columns(q4, ws.Value(), s.Streams(4), pad: false);
        var dx = s.Dgrad(s.Probe(3, dy3), s.Probe(4, w4));

        long rows = dyT.shape[0];
        var x6Source = xs.Fp4Part ?? xs;   // OutControl: Q6 covers the FP4 part
        Tensor x6 = q6 is null ? LinearStep.PadRows(x6Source.Value(), rows)
            : q6Stored is not null && x6Source.Storage is { } xst ? d.ColumnsFromStored(q6Stored, xst, rows, s.Streams(6))
            : d.Columns(q6, LinearStep.PadRows(x6Source.Value(), rows), s.Streams(6), pad: true);
        var dw = xs.Channels is { } oc
            ? s.WgradParts(s.Probe(5, dy5), s.Probe(6, x6), dy, xs.OutlierPart!.Value(), oc)
            : s.Wgrad(s.Probe(5, dy5), s.Probe(6, x6));
        return (dx, dw);
    }

}
