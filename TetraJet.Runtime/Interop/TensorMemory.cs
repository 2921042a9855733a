using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Interop;

/// <summary>Raw access to TorchSharp tensor memory, so kernels read and write it without copies.</summary>
public static unsafe partial class TensorMemory
{
    // LibTorchSharp's own export: the tensor's data pointer with its storage offset applied.
    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Address of the first element of <paramref name="t"/> (CPU or CUDA).</summary>
    public static IntPtr DataPointer(Tensor t) => THSTensor_data(t.Handle);

    /// <summary>A span over a contiguous float32 CPU tensor's elements.</summary>
    public static Span<float> Floats(Tensor t)
    {
        Check(t, ScalarType.Float32);
        return new Span<float>((void*)DataPointer(t), checked((int)t.numel()));
    }

    /// <summary>A span over a contiguous bfloat16 CPU tensor's elements, as raw 16-bit patterns.</summary>
    public static Span<ushort> BFloat16Bits(Tensor t)
    {
        Check(t, ScalarType.BFloat16);
        return new Span<ushort>((void*)DataPointer(t), checked((int)t.numel()));
    }

    /// <summary>A span over a contiguous uint8 CPU tensor.</summary>
    public static Span<byte> Bytes(Tensor t)
    {
        Check(t, ScalarType.Byte);
        return new Span<byte>((void*)DataPointer(t), checked((int)t.numel()));
    }

    static void Check(Tensor t, ScalarType type)
    {
        if (t.device_type != DeviceType.CPU) throw new ArgumentException($"expected a CPU tensor, got one on {t.device}");
        if (t.dtype != type) throw new ArgumentException($"expected a {type} tensor, got {t.dtype}");
        if (!t.is_contiguous()) throw new ArgumentException("expected a contiguous tensor");
    }
}
