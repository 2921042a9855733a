using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// What the FP8 GEMMs (<see cref="GemmPath.FP8"/>) did on this layer: whether the last forward took them, and per slot
/// how many lines (rows of an operand along the GEMM's reduction axis) were computed exactly because the block scales
/// of one of their 128-groups spanned more than 14 binades (docs/GPU.md). The counts accumulate on the device, so reading them is the only synchronisation.
/// </summary>
public sealed partial class QLinear
{
    Tensor? _fp8Flagged;
    readonly long[] _fp8Lines = new long[7];

    /// <summary>Whether the last forward multiplied on FP8 tensor cores.</summary>
    public bool LastForwardUsedFp8 { get; internal set; }

    /// <summary>Whether the last forward multiplied on block-scaled FP4 tensor cores (Blackwell, <see cref="Gemm.Fp4Gemm"/>).</summary>
    public bool LastForwardUsedFp4 { get; internal set; }

    /// <summary>
    /// The device counters of exactly computed lines (int64 [7], index = slot) on <paramref name="device"/>, where the
    /// FP8 patch kernel adds each operand's flag count; moved there with their totals when the layer changes device.
    /// </summary>
    internal Tensor Fp8Counters(Device device)
    {
        if (_fp8Flagged is null || _fp8Flagged.device_type != device.type || _fp8Flagged.device_index != device.index)
        {
            using var _ = no_grad();
            var moved = (_fp8Flagged ?? zeros(7, dtype: ScalarType.Int64)).to(device).DetachFromDisposeScope();
            _fp8Flagged?.Dispose();
            _fp8Flagged = moved;
        }
        return _fp8Flagged;
    }

    /// <summary>Adds an operand's number of lines to slot <paramref name="slot"/>'s total.</summary>
    internal void CountFp8Lines(int slot, long lines) => _fp8Lines[slot] += lines;

    /// <summary>
    /// Per slot Q1–Q6 (index 1–6): lines computed exactly, and lines in all, since the last reset.
    /// </summary>
    public (long Exact, long Total)[] Fp8Fallbacks(bool reset = false)
    {
        var exact = _fp8Flagged is null ? new long[7] : _fp8Flagged.cpu().data<long>().ToArray();
        var result = Enumerable.Range(0, 7).Select(i => (exact[i], _fp8Lines[i])).ToArray();
        if (reset)
        {
            _fp8Flagged?.zero_();
            Array.Clear(_fp8Lines);
        }
        return result;
    }
}
