namespace TetraJet;

/// <summary>How a scaled value is rounded to the element grid (ALGORITHMS.md §2).</summary>
/// <remarks>In namespace <c>TetraJet</c> so that <c>[QuantizeSlot(…, Rounding = Rounding.Nearest)]</c> needs no other using.</remarks>
public enum Rounding
{
    Nearest,
    Stochastic,
    /// <summary>Q-EMA: the EMA weight, divided by the same block scale, picks lo or hi. Chosen by the QEma option, never per slot.</summary>
    EmaGuided,
}
