using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// Derives the Philox stream of each random draw of a linear layer from (step, layer id, slot), so a run is
/// reproducible from its seed (ALGORITHMS.md §6): stream = (step mod 2^32)·2^32 + (layer id mod 2^28)·2^4 + slot.
/// The step is the layer's count of training forwards; slots 1–6 are the quantizers Q1–Q6 (SR draws); slot 7 is the
/// RHT signs of the dgrad pair (Q3, Q4), slot 8 those of the wgrad pair (Q5, Q6), slot 9 those of the forward pair
/// (Q1, Q2, where a per-slot override gives them an RHT): a pair shares its signs so that the transforms cancel in the
/// product. Distinct (step, layer id, slot) give distinct streams while the step stays below 2^32 training forwards.
/// The gradient-to-noise diagnostic's second draw uses the same stream ids under another Philox key (<see cref="NoiseDrawKey"/>).
/// </summary>
/// <remarks>
/// A layer's id is <see cref="IdOfInitialWeights"/>: a hash of the weight and bias it was created with. Two layers
/// of one class (two blocks of a transformer) are initialised with different random numbers, so their ids differ
/// without anything to call, and the same seed recreates the same ids. The id is part of the layer's state dict,
/// so a model loaded from a checkpoint continues the streams of the run that saved it.
/// </remarks>
public static class LayerStreams
{
    public const int DgradHadamard = 7, WgradHadamard = 8, ForwardHadamard = 9;

    /// <summary>
    /// XORed into the layer's Philox key for the diagnostic's second draw of a backward (QLinear.SampleGradientNoise):
    /// its SR draws and RHT signs are then independent of the step's own, whose key and counters it leaves alone.
    /// </summary>
    public const ulong NoiseDrawKey = 0x9E3779B97F4A7C15;

    /// <summary>Layer ids are taken modulo 2^28: the bits the stream id has for them.</summary>
    public const int IdBits = 28;

    const uint IdMask = (1u << IdBits) - 1;

    public static ulong For(long step, int layerId, int slot) =>
        ((ulong)step << 32) | (((ulong)(uint)layerId & IdMask) << 4) | ((ulong)slot & 0xFu);

    /// <summary>
    /// Whether slot <paramref name="slot"/> quantizes a rank's own data (Q1 X, Q3 dY, Q5 dYᵀ, Q6 Xᵀ) rather than the
    /// weight every rank holds alike (Q2, Q4): under data parallelism only the former draw rank-specific numbers.
    /// </summary>
    public static bool IsDataSlot(int slot) => slot is 1 or 3 or 5 or 6;

    /// <summary>
    /// The Philox key of a data slot's stochastic rounding on data-parallel rank <paramref name="rank"/>: the layer's key
    /// itself on rank 0 (so a run of one process, or rank 0 of many, draws exactly as before), else the key XOR rank ×
    /// 0x9E3779B97F4A7C15. The multiplier is odd, so distinct ranks get distinct keys, and another key is another
    /// Philox permutation: no rank's numbers repeat another's whatever the stream ids. RHT signs keep the layer's key
    /// on every rank, as one process of the whole batch would draw them.
    /// </summary>
    public static ulong KeyForRank(ulong key, int rank) =>
        rank == 0 ? key : key ^ ((ulong)(uint)rank * 0x9E3779B97F4A7C15UL);

    /// <summary>
    /// A 28-bit id from the bits of a layer's freshly initialised parameters (FNV-style multiply-xor over 8-byte words,
    /// then SplitMix64's finaliser). Weights initialised from different random numbers give different ids except with
    /// probability 2^−28 per pair; <see cref="QuantizationExtensions.MakeLayerIdsDistinct"/> settles such a collision.
    /// </summary>
    public static int IdOfInitialWeights(Tensor weight, Tensor? bias)
    {
        ulong h = 0xCBF29CE484222325;
        h = HashInto(h, weight);
        if (bias is not null) h = HashInto(h, bias);
        return (int)(Finish(h) & IdMask);
    }

    /// <summary>Another id for a layer whose id collides with an earlier layer's: a hash of its id and its module path.</summary>
    public static int Rehash(int layerId, string path)
    {
        ulong h = (ulong)(uint)layerId * 0x9E3779B97F4A7C15;
        foreach (char c in path) h = (h ^ c) * 0x100000001B3;
        return (int)(Finish(h) & IdMask);
    }

    static unsafe ulong HashInto(ulong h, Tensor t)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var cpu = t.detach().to(CPU).contiguous();
        long bytes = cpu.numel() * cpu.ElementSize;
        byte* p = (byte*)Interop.TensorMemory.DataPointer(cpu);
        long i = 0;
        for (; i + 8 <= bytes; i += 8) h = (h ^ *(ulong*)(p + i)) * 0x100000001B3;
        for (; i < bytes; i++) h = (h ^ p[i]) * 0x100000001B3;
        return (h ^ (ulong)bytes) * 0x100000001B3;
    }

    static ulong Finish(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
