using TetraJet.Interop;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>CUDA tensors as kernel views, and the runner of a tensor's device.</summary>
public static class DeviceTensors
{
    /// <summary>A contiguous CUDA tensor's memory as a kernel view (its element count as the length).</summary>
    public static DeviceView View(Tensor t) => new(TensorMemory.DataPointer(t), t.numel());

    /// <summary>
    /// <paramref name="t"/> contiguous and 16-byte aligned: the kernels read and write with 16-byte vector accesses, and a
    /// torch view with an offset may start anywhere. Fresh allocations are aligned; a view that is not is copied.
    /// </summary>
    public static Tensor Aligned(Tensor t)
    {
        // The common case, a fresh contiguous tensor, returns itself without a new handle (a host-side cost per launch).
        if (t.is_contiguous() && (TensorMemory.DataPointer(t) & 15) == 0) return t;
        var c = t.contiguous();
        return (TensorMemory.DataPointer(c) & 15) == 0 ? c : c.clone();
    }

    /// <summary>The launcher of the CUDA device <paramref name="device"/> (torch's numbering).</summary>
    public static CudaRunner Runner(Device device) => CudaRunner.ForDevice(device.index < 0 ? 0 : device.index);
}
