using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// X̂ or Ŵ between forward and backward: in FP4 storage form where the slot's format packs on the device
/// (ALGORITHMS.md §4: "save Q1(X) packed, not X"), otherwise the tensor itself.
/// </summary>
sealed class SavedOperand : IDisposable
{
    Tensor? plain;
    PackedOperand? packed;

    SavedOperand(Tensor? plain, PackedOperand? packed) => (this.plain, this.packed) = (plain, packed);

    /// <summary>Keeps <paramref name="value"/> = Q(<paramref name="original"/>), packed when <paramref name="pack"/> and the format allow.</summary>
    public static SavedOperand Keep(Tensor original, Tensor value, QuantSpec spec, bool pack) =>
        pack && DevicePacking.CanPack(spec, value.shape[^1])
            ? new(null, DevicePacking.Pack(original, value, spec).DetachFromDisposeScope())
            : new(value.DetachFromDisposeScope(), null);

    /// <summary>Bytes this operand holds.</summary>
    public long Bytes => packed?.Bytes ?? plain!.numel() * plain.element_size();

    public bool IsPacked => packed is not null;

    /// <summary>The operand's values; the caller owns the tensor. Once only: backward takes what forward left.</summary>
    public Tensor Take()
    {
        var result = plain ?? packed?.Unpack() ?? throw new InvalidOperationException("the saved operand was already taken");
        plain = null;
        packed?.Dispose();
        packed = null;
        return result;
    }

    public void Dispose()
    {
        plain?.Dispose();
        packed?.Dispose();
        plain = null;
        packed = null;
    }
}
