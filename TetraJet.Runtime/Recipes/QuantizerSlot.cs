using TetraJet.Quantization;

namespace TetraJet;

/// <summary>Where a backward quantizer takes its input from (ALGORITHMS.md §4).</summary>
public enum SlotSource
{
    /// <summary>Q1, Q2, Q3, Q5: the tensor itself (X, W or dY).</summary>
    Direct,
    /// <summary>Q4, Q6 double quantization: the dequantized forward value (Ŵ = Q2(W), X̂ = Q1(X)) re-quantized.</summary>
    ForwardDequantized,
    /// <summary>NVIDIA recipe Q4: the forward 16×16 codes, transposed; no re-quantization.</summary>
    ForwardCodesTransposed,
    /// <summary>NVIDIA recipe Q6: the original X quantized along T.</summary>
    Original,
}

/// <summary>One of the six quantizers of a linear layer: its numbers, its input and whether it applies the RHT.</summary>
public sealed record QuantizerSlot(QuantSpec Spec, SlotSource Source = SlotSource.Direct, bool Hadamard = false)
{
    public static QuantizerSlot None { get; } = new(new QuantSpec(QuantFormat.None));

    public bool IsQuantized => Spec.Format != QuantFormat.None;

    public override string ToString()
    {
        if (!IsQuantized) return "BF16";
        var text = Spec.ToString();
        if (Hadamard) text += " + RHT";
        return Source switch
        {
            SlotSource.ForwardDequantized => text + " (re-quantized)",
            SlotSource.ForwardCodesTransposed => "forward 16x16 codes, transposed",
            SlotSource.Original => text + " (from X)",
            _ => text,
        };
    }
}
