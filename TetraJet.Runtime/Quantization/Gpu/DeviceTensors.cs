using TetraJet.Interop;
using static TorchSharp.torch;

namespace TetraJet.Quantization.Gpu;

/// <summary>CUDA tensors as kernel views, and the runner of a tensor's device.</summary>
public static class DeviceTensors
{
    /// <summary>A contiguous CUDA tensor's memory as a kernel view (its element count as the length).</summary>
    public static DeviceView View(Tensor t) => new(TensorMemory.DataPointer(t), t.numel());

    /// <summary>The launcher of the CUDA device <paramref name="device"/> (torch's numbering).</summary>
    public static CudaRunner Runner(Device device) => CudaRunner.ForDevice(device.index < 0 ? 0 : device.index);
}
