namespace TetraJet;

/// <summary>The six quantizers of a linear layer (ALGORITHMS.md §4), for <see cref="QuantizeSlotAttribute"/> and <see cref="Recipe.WithSlot"/>.</summary>
public enum Slot
{
    /// <summary>X along K, forward.</summary>
    Q1 = 1,
    /// <summary>W along K, forward.</summary>
    Q2 = 2,
    /// <summary>dY along N, dgrad.</summary>
    Q3 = 3,
    /// <summary>Ŵ along N, dgrad.</summary>
    Q4 = 4,
    /// <summary>dY along T, wgrad.</summary>
    Q5 = 5,
    /// <summary>X̂ along T, wgrad.</summary>
    Q6 = 6,
}
