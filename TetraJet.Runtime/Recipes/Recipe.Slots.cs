using TetraJet.Quantization;

namespace TetraJet;

// Per-slot overrides: the quantizer-by-quantizer ablations of the TetraJet paper's analysis. [QuantizeSlot]
// compiles to WithSlot calls, so the rules below are the DSL's too (the generator mirrors them, and a test checks
// the two against each other).
public sealed partial record Recipe
{
    /// <summary>The quantizer in <paramref name="slot"/>.</summary>
    public QuantizerSlot GetSlot(Slot slot) => slot switch
    {
        Slot.Q1 => Q1,
        Slot.Q2 => Q2,
        Slot.Q3 => Q3,
        Slot.Q4 => Q4,
        Slot.Q5 => Q5,
        Slot.Q6 => Q6,
        _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, "slots are Q1 to Q6"),
    };

    /// <summary>
    /// This recipe with the quantizer in <paramref name="slot"/> replaced by one in <paramref name="format"/>.
    /// </summary>
    /// <param name="rounding">
    /// Default: the recipe slot's; where that slot is BF16, Nearest for Q1/Q2 and Stochastic for Q3–Q6. Ignored for
    /// BF16. <see cref="Rounding.EmaGuided"/> is not a choice: the QEma option picks it for Q2.
    /// </param>
    /// <param name="hadamard">Whether the slot applies the random Hadamard transform. Default: the recipe slot's. Ignored for BF16, which applies none.</param>
    /// <param name="scaleRule">MXFP4's scale rule. Default: the recipe slot's where that slot is MXFP4, else TetraJet. Ignored for the other formats.</param>
    /// <remarks>
    /// The new quantizer keeps the recipe slot's input: Q4 and Q6 re-quantize the forward values Ŵ and X̂ under the
    /// double-quantization recipes, the NVIDIA recipe's Q6 starts from X. The one exception is the NVIDIA recipe's Q4,
    /// which transposes Q2's 16×16 codes instead of quantizing: once Q4 itself is overridden, it re-quantizes Ŵ along N.
    /// (Overriding only Q2 leaves that Q4 reusing whatever Q2 produced.) The NVIDIA recipe's 16×16 weight tiles stay
    /// on a Q2 overridden to <see cref="Format.NVFP4PerTensor"/>. An RHT must be on both operands of a backward GEMM
    /// (Q3 and Q4, Q5 and Q6) or on neither: <see cref="QLinear"/> rejects a recipe where the transforms would not cancel.
    /// </remarks>
    /// <exception cref="ArgumentException">EMA-guided rounding, or an RHT on Q1 or Q2 (the forward operands are kept for backward untransformed).</exception>
    public Recipe WithSlot(Slot slot, Format format, Rounding? rounding = null, bool? hadamard = null, ScaleRule? scaleRule = null)
    {
        var updated = Override(slot, GetSlot(slot), format, rounding, hadamard, scaleRule);
        return slot switch
        {
            Slot.Q1 => this with { Q1 = updated },
            Slot.Q2 => this with { Q2 = updated },
            Slot.Q3 => this with { Q3 = updated },
            Slot.Q4 => this with { Q4 = updated },
            Slot.Q5 => this with { Q5 = updated },
            _ => this with { Q6 = updated },
        };
    }

    static QuantizerSlot Override(Slot slot, QuantizerSlot current, Format format, Rounding? rounding, bool? hadamard, ScaleRule? scaleRule)
    {
        var source = current.Source == SlotSource.ForwardCodesTransposed ? SlotSource.ForwardDequantized : current.Source;
        var quantFormat = format switch
        {
            Format.BF16 => QuantFormat.None,
            Format.MXFP4 => QuantFormat.MXFP4,
            Format.NVFP4 => QuantFormat.NVFP4,
            Format.NVFP4PerTensor => QuantFormat.NVFP4Tensor,
            Format.MXFP8 => QuantFormat.MXFP8,
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown format"),
        };
        if (quantFormat == QuantFormat.None) return new QuantizerSlot(new QuantSpec(QuantFormat.None), source);

        var r = rounding ?? (current.IsQuantized ? current.Spec.Rounding
            : slot is Slot.Q1 or Slot.Q2 ? Rounding.Nearest : Rounding.Stochastic);
        if (r == Rounding.EmaGuided)
            throw new ArgumentException($"{slot}: EMA-guided rounding is not a per-slot choice; set QEma on the recipe (it guides Q2)", nameof(rounding));
        var rht = hadamard ?? current.Hadamard;
        if (rht && slot is Slot.Q1 or Slot.Q2)
            throw new ArgumentException($"{slot} cannot apply the random Hadamard transform: the forward operands X̂ and Ŵ are kept for backward untransformed", nameof(hadamard));
        var rule = quantFormat != QuantFormat.MXFP4 ? ScaleRule.TetraJet
            : scaleRule ?? (current.Spec.Format == QuantFormat.MXFP4 ? current.Spec.ScaleRule : ScaleRule.TetraJet);
        var tile = quantFormat == QuantFormat.NVFP4Tensor && current.Spec.Tile16 && current.Source != SlotSource.ForwardCodesTransposed;
        return new QuantizerSlot(new QuantSpec(quantFormat, r, rule, tile), source, rht);
    }

    /// <summary>Whether <paramref name="slot"/> differs from the same slot of the named recipe this one derives from (by <see cref="Name"/>).</summary>
    public bool IsOverridden(Slot slot)
    {
        foreach (var id in Enum.GetValues<RecipeId>())
        {
            var named = Get(id);
            if (named.Name == Name) return named.GetSlot(slot) != GetSlot(slot);
        }
        return false;
    }

    /// <summary>Rejects slots whose random Hadamard transforms would not cancel in their GEMM (ALGORITHMS.md §3.5).</summary>
    internal void EnsureTransformsCancel(string layer)
    {
        foreach (var slot in new[] { Slot.Q1, Slot.Q2 })
        {
            if (AppliesRht(GetSlot(slot)))
                throw new ArgumentException($"{layer}: {slot} of recipe {Name} applies the random Hadamard transform; the forward operands are kept for backward untransformed, so Q1 and Q2 cannot take it");
        }
        Pair(Slot.Q3, Slot.Q4, "dgrad");
        Pair(Slot.Q5, Slot.Q6, "wgrad");

        void Pair(Slot a, Slot b, string gemm)
        {
            bool ta = AppliesRht(GetSlot(a)), tb = AppliesRht(GetSlot(b));
            if (ta == tb) return;
            var (with, without) = ta ? (a, b) : (b, a);
            throw new ArgumentException($"{layer}: {with} of recipe {Name} applies the random Hadamard transform but {without} does not, so the {gemm} GEMM's transforms would not cancel; give both or neither the transform");
        }
    }

    /// <summary>A BF16 slot passes its input through, transform or not.</summary>
    static bool AppliesRht(QuantizerSlot slot) => slot.IsQuantized && slot.Hadamard;
}
