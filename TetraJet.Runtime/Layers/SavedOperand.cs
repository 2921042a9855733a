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
    readonly bool owned = true;

    SavedOperand(Tensor? plain, PackedOperand? packed) => (this.plain, this.packed) = (plain, packed);

    SavedOperand(Tensor view) => (plain, owned) = (view, false);

    /// <summary>A tensor the caller keeps owning, in the shape of a saved operand (tests and checks call the slots with tensors).</summary>
    public static SavedOperand View(Tensor value) => new(value);

    /// <summary>The storage form, when kept packed.</summary>
    public PackedOperand? Packed => packed;

    /// <summary>The values (unpacked if need be; the caller's scope owns an unpacked tensor).</summary>
    public Tensor Value() => plain ?? packed?.Unpack() ?? throw new InvalidOperationException("the saved operand was released");

    /// <summary>Keeps <paramref name="value"/> = Q(<paramref name="original"/>), packed when <paramref name="pack"/> and the format allow.</summary>
    public static SavedOperand Keep(Tensor original, Tensor value, QuantSpec spec, bool pack) =>
        pack && DevicePacking.CanPack(spec, value.shape[^1])
            ? new(null, DevicePacking.Pack(original, value, spec).DetachFromDisposeScope())
            : new(value.DetachFromDisposeScope(), null);

    /// <summary>Bytes this operand holds.</summary>
    public long Bytes => packed?.Bytes ?? plain!.numel() * plain.element_size();

    public bool IsPacked => packed is not null;

    public void Dispose()
    {
        if (owned) plain?.Dispose();
        packed?.Dispose();
        plain = null;
        packed = null;
    }
}
