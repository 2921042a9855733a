namespace TetraJet.Quantization.Cpu;

/// <summary>One quantizer call as raw pointers into pinned (or native tensor) memory, so that kernels run on worker threads without copies.</summary>
internal readonly unsafe struct KernelArgs(float* x, float* y, float* ema, int rows, int cols, ulong seed, ulong stream, float tensorOuter)
{
    public readonly float* X = x, Y = y, E = ema;
    public readonly int Rows = rows, Cols = cols;
    public readonly ulong Seed = seed, Stream = stream;
    /// <summary>Per-tensor NVFP4 only: the tensor's outer scale s_o (finite; a non-finite tensor never reaches the kernels).</summary>
    public readonly float TensorOuter = tensorOuter;

    public KernelArgs WithTensorOuter(float so) => new(X, Y, E, Rows, Cols, Seed, Stream, so);

    public static void Fill(float* y, long count, float value) => new Span<float>(y, checked((int)count)).Fill(value);
}
