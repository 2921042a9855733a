using ILGPU.Runtime;
using TetraJet.Interop;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Gpu;

/// <summary>
/// The CUDA checks of the FP8 operands (<see cref="Fp8SelfCheck"/>, run by GpuBench on the GPU) run here through ILGPU's
/// CPU accelerator on CPU tensors: the checks themselves (planting, the flag rule's reference, the comparisons) are
/// exercised where CI runs, and the same kernels must pass them.
/// </summary>
[Collection("cpu accelerator")]
public class Fp8SelfCheckTests(CpuAcceleratorFixture fixture)
{
    /// <summary>The kernels on host copies of CPU tensors, through <see cref="GpuQuantizer"/>'s FP8 runners.</summary>
    sealed class CpuAcceleratorLauncher(Accelerator acc) : IFp8Launcher
    {
        static bool Bf16(Tensor t) => t.dtype == ScalarType.BFloat16;

        static ushort[] Bits(Tensor t) => TensorMemory.BFloat16Bits(t.contiguous()).ToArray();
        static float[] Floats(Tensor t) => TensorMemory.Floats(t.to(ScalarType.Float32).contiguous()).ToArray();

        static Fp8Tensors Wrap<T>(Fp8Result<T> r, ScalarType dtype) where T : unmanaged
        {
            long groups = (r.Length + 127) / 128;
            var side = r.Side is ushort[] bits ? bits.Select(Quantization.Gpu.Bf16.Widen).ToArray() : (float[])(object)r.Side;
            return new Fp8Tensors(tensor(r.Codes8, new long[] { r.Rows, r.Length }), tensor(r.Scales8, new long[] { groups, r.Rows }),
                tensor(Fp8Operand.Buffer(r.Rows, r.Flags)), tensor(side, new long[] { r.Rows, r.Length }).to(dtype), r.Rows, r.Length);
        }

        static Fp8Result<T> Unwrap<T>(Fp8Tensors o, Func<Tensor, T[]> side) where T : unmanaged =>
            new(TensorMemory.Bytes(o.Codes8.contiguous()).ToArray(), TensorMemory.Floats(o.Scales8.contiguous()).ToArray(), o.FlaggedLines(), side(o.Side),
                [], [], o.Lines, o.Length);

        static void Fill(PackedTensor? stored, byte[] codes, byte[] scales)
        {
            if (stored is null) return;
            codes.CopyTo(TensorMemory.Bytes(stored.Codes));
            scales.CopyTo(TensorMemory.Bytes(stored.Scales));
        }

        public Fp8Tensors Rows(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema, PackedTensor? stored)
        {
            int rows = (int)x.shape[0], cols = (int)x.shape[1];
            var e = ema is null ? null : Floats(ema);
            if (Bf16(x))
            {
                var r = GpuQuantizer.Fp8Rows(acc, spec, Bits(x), rows, cols, stored is not null, seed, stream, e);
                Fill(stored, r.Codes, r.Scales);
                return Wrap(r, x.dtype);
            }
            var f = GpuQuantizer.Fp8Rows(acc, spec, Floats(x), rows, cols, stored is not null, seed, stream, e);
            Fill(stored, f.Codes, f.Scales);
            return Wrap(f, x.dtype);
        }

        public Fp8Tensors Columns(Tensor x, QuantSpec spec, ulong seed, ulong stream, Tensor? ema)
        {
            int rows = (int)x.shape[0], cols = (int)x.shape[1];
            var e = ema is null ? null : Floats(ema);
            return Bf16(x) ? Wrap(GpuQuantizer.Fp8Columns(acc, spec, Bits(x), rows, cols, seed, stream, e), x.dtype)
                : Wrap(GpuQuantizer.Fp8Columns(acc, spec, Floats(x), rows, cols, seed, stream, e), x.dtype);
        }

        public Fp8Tensors StoredColumns(PackedTensor source, QuantSpec target, ulong seed, ulong stream)
        {
            var codes = TensorMemory.Bytes(source.Codes.contiguous()).ToArray();
            var scales = TensorMemory.Bytes(source.Scales.contiguous()).ToArray();
            return source.DType == ScalarType.BFloat16
                ? Wrap(GpuQuantizer.Fp8StoredColumns<ushort>(acc, source.Spec, target, codes, scales, source.Rows, source.Cols, seed, stream), source.DType)
                : Wrap(GpuQuantizer.Fp8StoredColumns<float>(acc, source.Spec, target, codes, scales, source.Rows, source.Cols, seed, stream), source.DType);
        }

        public (Fp8Tensors Q3, Fp8Tensors Q5) Dual(Tensor dy, QuantSpec spec, ulong seed, ulong stream3, ulong stream5)
        {
            int rows = (int)dy.shape[0], cols = (int)dy.shape[1];
            if (Bf16(dy))
            {
                var (b3, b5) = GpuQuantizer.Fp8Dual(acc, spec, Bits(dy), rows, cols, seed, stream3, stream5);
                return (Wrap(b3, dy.dtype), Wrap(b5, dy.dtype));
            }
            var (f3, f5) = GpuQuantizer.Fp8Dual(acc, spec, Floats(dy), rows, cols, seed, stream3, stream5);
            return (Wrap(f3, dy.dtype), Wrap(f5, dy.dtype));
        }

        public void Patch(Tensor d, Fp8Tensors a, Fp8Tensors b, int k, Tensor? bias)
        {
            if (Bf16(d))
            {
                var r = GpuQuantizer.Fp8Patch(acc, Unwrap(a, Bits), Unwrap(b, Bits), Bits(d), k, bias is null ? null : Bits(bias));
                r.CopyTo(TensorMemory.BFloat16Bits(d));
            }
            else
            {
                var r = GpuQuantizer.Fp8Patch(acc, Unwrap(a, Floats), Unwrap(b, Floats), Floats(d), k, bias is null ? null : Floats(bias));
                r.CopyTo(TensorMemory.Floats(d));
            }
        }
    }

    [Fact]
    public void Every_FP8_GPU_check_passes_on_the_CPU_accelerator()
    {
        var checks = Fp8SelfCheck.RunAll(CPU, new CpuAcceleratorLauncher(fixture.Accelerator), small: true).ToList();
        var failed = checks.Where(c => !c.Pass).Select(c => $"{c.Name}: {c.Detail}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
        Assert.Equal(42, checks.Count);
    }
}
