using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Plans;

/// <summary>
/// X̂ or Ŵ between forward and backward: in storage form (ALGORITHMS.md §4: "save Q1(X) packed, not X") where the
/// plan keeps it so, otherwise the tensor itself; under OutControl, its two parts (the FP4 channels and the outlier
/// channels, each gathered and kept as above) with the channels that put them back.
/// </summary>
public sealed class SavedOperand : IDisposable
{
    Tensor? plain;
    PackedTensor? stored;
    readonly bool owned = true;
    SavedOperand? fp4Part, outlierPart;

    SavedOperand(Tensor? plain, PackedTensor? stored, bool owned) => (this.plain, this.stored, this.owned) = (plain, stored, owned);

    SavedOperand(SavedOperand fp4, SavedOperand outliers, OutControlChannels channels) =>
        (fp4Part, outlierPart, Channels) = (fp4, outliers, channels);

    /// <summary>Keeps a tensor (taken out of any dispose scope: this object disposes it).</summary>
    public static SavedOperand Plain(Tensor value) => new(value.DetachFromDisposeScope(), null, true);

    /// <summary>Keeps a storage form (taken out of any dispose scope).</summary>
    public static SavedOperand Stored(PackedTensor value) => new(null, value.DetachFromDisposeScope(), true);

    /// <summary>Either, as a plan's forward produced them: the storage form when there is one.</summary>
    public static SavedOperand Of(Tensor value, PackedTensor? storage) => storage is null ? Plain(value) : Stored(storage);

    /// <summary>A tensor the caller keeps owning, in the shape of a saved operand (checks call the slots with tensors).</summary>
    public static SavedOperand View(Tensor value) => new(value, null, false);

    /// <summary>OutControl's two parts of one operand, each kept as a plan's forward produced it.</summary>
    public static SavedOperand Parts(SavedOperand fp4, SavedOperand outliers, OutControlChannels channels) => new(fp4, outliers, channels);

    /// <summary>The storage form, when kept whole in one (never for parts: see <see cref="Fp4Part"/>).</summary>
    public PackedTensor? Storage => stored;

    /// <summary>OutControl's channels when kept in parts, else null.</summary>
    public OutControlChannels? Channels { get; }

    /// <summary>The FP4 part [rows, K − k] when kept in parts.</summary>
    public SavedOperand? Fp4Part => fp4Part;

    /// <summary>The outlier part [rows, k] when kept in parts.</summary>
    public SavedOperand? OutlierPart => outlierPart;

    /// <summary>Rows of the operand ([rows, cols]).</summary>
    public long Rows => fp4Part?.Rows ?? stored?.Rows ?? plain?.size(0) ?? throw Released();

    /// <summary>The values (unpacked, and the parts put back in their channels, if need be; the caller's scope owns a new tensor).</summary>
    public Tensor Value() => fp4Part is not null ? OutControl.Mix(fp4Part.Value(), outlierPart!.Value(), Channels!)
        : plain ?? stored?.Dequantize() ?? throw Released();

    /// <summary>Bytes this operand holds.</summary>
    public long Bytes => fp4Part is not null ? fp4Part.Bytes + outlierPart!.Bytes
        : stored?.Bytes ?? (plain is null ? 0 : plain.numel() * plain.element_size());

    static InvalidOperationException Released() => new("the saved operand was released");

    public void Dispose()
    {
        if (owned) plain?.Dispose();
        stored?.Dispose();
        fp4Part?.Dispose();
        outlierPart?.Dispose();
        plain = null;
        stored = null;
        fp4Part = outlierPart = null;
    }
}
