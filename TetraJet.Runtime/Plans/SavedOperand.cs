using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// X̂ or Ŵ between forward and backward: in storage form (ALGORITHMS.md §4: "save Q1(X) packed, not X") where the
/// plan keeps it so, otherwise the tensor itself.
/// </summary>
public sealed class SavedOperand : IDisposable
{
    Tensor? plain;
    PackedTensor? stored;
    readonly bool owned = true;

    SavedOperand(Tensor? plain, PackedTensor? stored, bool owned) => (this.plain, this.stored, this.owned) = (plain, stored, owned);

    /// <summary>Keeps a tensor (taken out of any dispose scope: this object disposes it).</summary>
    public static SavedOperand Plain(Tensor value) => new(value.DetachFromDisposeScope(), null, true);

    /// <summary>Keeps a storage form (taken out of any dispose scope).</summary>
    public static SavedOperand Stored(PackedTensor value) => new(null, value.DetachFromDisposeScope(), true);

    /// <summary>Either, as a plan's forward produced them: the storage form when there is one.</summary>
    public static SavedOperand Of(Tensor value, PackedTensor? storage) => storage is null ? Plain(value) : Stored(storage);

    /// <summary>A tensor the caller keeps owning, in the shape of a saved operand (checks call the slots with tensors).</summary>
    public static SavedOperand View(Tensor value) => new(value, null, false);

    /// <summary>The storage form, when kept so.</summary>
    public PackedTensor? Storage => stored;

    /// <summary>Rows of the operand ([rows, cols]).</summary>
    public long Rows => stored?.Rows ?? plain?.shape[0] ?? throw Released();

    /// <summary>The values (unpacked if need be; the caller's scope owns an unpacked tensor).</summary>
    public Tensor Value() => plain ?? stored?.Dequantize() ?? throw Released();

    /// <summary>Bytes this operand holds.</summary>
    public long Bytes => stored?.Bytes ?? (plain is null ? 0 : plain.numel() * plain.element_size());

    static InvalidOperationException Released() => new("the saved operand was released");

    public void Dispose()
    {
        if (owned) plain?.Dispose();
        stored?.Dispose();
        plain = null;
        stored = null;
    }
}
