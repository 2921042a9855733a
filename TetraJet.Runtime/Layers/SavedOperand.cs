using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// X̂ or Ŵ between forward and backward: in storage form where the slot's format packs on the device
/// (ALGORITHMS.md §4: "save Q1(X) packed, not X"), otherwise the tensor itself. Under OutControl, the FP4 part and the
/// MXFP8 part, each gathered as the forward pass quantized it and kept in its own storage form.
/// </summary>
sealed class SavedOperand : IDisposable
{
    Tensor? plain;
    PackedOperand? packed;
    SavedOperand? fp4Part, outlierPart;
    readonly OutControlChannels? channels;
    readonly bool owned = true;

    SavedOperand(Tensor? plain, PackedOperand? packed) => (this.plain, this.packed) = (plain, packed);

    SavedOperand(Tensor view) => (plain, owned) = (view, false);

    SavedOperand(SavedOperand fp4Part, SavedOperand outlierPart, OutControlChannels channels) =>
        (this.fp4Part, this.outlierPart, this.channels) = (fp4Part, outlierPart, channels);

    /// <summary>
    /// A tensor the caller keeps owning, in the shape of a saved operand (tests and checks call the slots with tensors);
    /// with <paramref name="channels"/>, split into OutControl's two parts as the forward pass keeps them.
    /// </summary>
    public static SavedOperand View(Tensor value, OutControlChannels? channels = null) => channels is null
        ? new(value)
        : new(new SavedOperand(OutControl.Gather(value, channels.Fp4)), new SavedOperand(OutControl.Gather(value, channels.Outliers)), channels);

    /// <summary>The storage form, when kept packed whole.</summary>
    public PackedOperand? Packed => packed;

    /// <summary>OutControl's channels, when kept as two parts.</summary>
    public OutControlChannels? Channels => channels;

    /// <summary>OutControl's FP4 part [rows, K − k] (the FP4 channels gathered), when kept as two parts.</summary>
    public SavedOperand? Fp4Part => fp4Part;

    /// <summary>OutControl's MXFP8 part [rows, k] (the outlier channels gathered), when kept as two parts.</summary>
    public SavedOperand? OutlierPart => outlierPart;

    /// <summary>The values (unpacked, and the parts mixed back into [rows, K], if need be; the caller's scope owns such a tensor).</summary>
    public Tensor Value() => channels is not null
        ? OutControl.Mix(fp4Part!.Value(), outlierPart!.Value(), channels)
        : plain ?? packed?.Unpack() ?? throw new InvalidOperationException("the saved operand was released");

    /// <summary>
    /// Keeps <paramref name="value"/> = Q(<paramref name="original"/>), packed when <paramref name="pack"/> and the format
    /// allow. With OutControl's <paramref name="channels"/>, as two parts: the FP4 channels (packed with
    /// <paramref name="spec"/>) and the outlier channels (packed as MXFP8).
    /// </summary>
    public static SavedOperand Keep(Tensor original, Tensor value, QuantSpec spec, bool pack, OutControlChannels? channels = null)
    {
        if (channels is not null)
            return new(Keep(OutControl.Gather(original, channels.Fp4), OutControl.Gather(value, channels.Fp4), spec, pack),
                       Keep(OutControl.Gather(original, channels.Outliers), OutControl.Gather(value, channels.Outliers), OutControl.OutlierSpec, pack),
                       channels);
        return pack && DevicePacking.CanPack(spec, value.shape[^1])
            ? new(null, DevicePacking.Pack(original, value, spec).DetachFromDisposeScope())
            : new(value.DetachFromDisposeScope(), null);
    }

    /// <summary>Bytes this operand holds.</summary>
    public long Bytes => channels is not null ? fp4Part!.Bytes + outlierPart!.Bytes : packed?.Bytes ?? plain!.numel() * plain.element_size();

    public bool IsPacked => channels is not null ? fp4Part!.IsPacked && outlierPart!.IsPacked : packed is not null;

    public void Dispose()
    {
        if (owned) plain?.Dispose();
        packed?.Dispose();
        fp4Part?.Dispose();
        outlierPart?.Dispose();
        plain = null;
        packed = null;
        fp4Part = outlierPart = null;
    }
}
