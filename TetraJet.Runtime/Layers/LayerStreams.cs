namespace TetraJet;

/// <summary>
/// Derives the Philox stream of each random draw of a linear layer from (step, layer id, slot), so a run is
/// reproducible from its seed (ALGORITHMS.md §6): stream = step·2^24 + (layer id mod 2^20)·2^4 + slot.
/// Slots 1–6 are the quantizers Q1–Q6 (SR draws); slot 7 is the RHT signs of the dgrad pair (Q3, Q4), slot 8 those
/// of the wgrad pair (Q5, Q6), slot 9 those of the forward pair (Q1, Q2, where a per-slot override gives them an RHT):
/// a pair shares its signs so that the transforms cancel in the product.
/// </summary>
public static class LayerStreams
{
    public const int DgradHadamard = 7, WgradHadamard = 8, ForwardHadamard = 9;

    public static ulong For(long step, int layerId, int slot) =>
        ((ulong)step << 24) | (((ulong)(uint)layerId & 0xFFFFFu) << 4) | ((ulong)slot & 0xFu);

    /// <summary>A stable layer id from a module path (FNV-1a), used when models name their layers.</summary>
    public static int IdOf(string path)
    {
        uint h = 2166136261;
        foreach (char c in path) { h ^= c; h *= 16777619; }
        return (int)(h & 0xFFFFF);
    }
}
