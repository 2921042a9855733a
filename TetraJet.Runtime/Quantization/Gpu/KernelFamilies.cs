using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Gpu;

// The kernel families: every quantizer kernel has one of these signatures, so each family is launched by one piece of
// code with typed arguments. A configuration's kernel entry points (generated, or instantiated by the library for a
// recipe known only at run time) are methods of these shapes with the configuration as struct type arguments.

/// <summary>Blocks along the last axis of x [rows, cols]: y = Q(x); with a storing kernel also its codes, scales and outer scales.</summary>
public delegate void RowKernel<T>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
    ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, int rows, int cols, PhiloxKey seed, ulong stream, uint signs)
    where T : unmanaged;

/// <summary>Blocks along the first axis of x [rows, cols] (rows past a block multiple are padding zeros).</summary>
public delegate void ColumnKernel<T>(ArrayView<T> x, ArrayView<T> y, ArrayView<float> ema, ArrayView<uint> tensorAmax,
    int rows, int cols, PhiloxKey seed, ulong stream, uint signs) where T : unmanaged;

/// <summary>Blocks along the first axis of an operand read from its storage form; rows at or past sourceRows are padding zeros.</summary>
public delegate void StoredColumnKernel<T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y,
    int rows, int cols, int sourceRows, PhiloxKey seed, ulong stream, uint signs) where T : unmanaged;

/// <summary>dY [rows, cols] read once: y3 along the last axis, y5 along the first.</summary>
public delegate void DualKernel<T>(ArrayView<T> x, ArrayView<T> y3, ArrayView<T> y5, int rows, int cols,
    PhiloxKey seed, ulong stream3, ulong stream5, uint signs3, uint signs5) where T : unmanaged;

/// <summary>Per-tensor amax bits of x (or of its RHT) maxed into result[0].</summary>
public delegate void AmaxKernel<T>(ArrayView<T> x, ArrayView<uint> result, int rows, int cols, uint signs) where T : unmanaged;

/// <summary>Storage form back to values.</summary>
public delegate void UnpackKernel<T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<float> outer, ArrayView<T> y, long count)
    where T : unmanaged;

/// <summary>
/// MXFP4 along the last axis (the GEMM's reduction axis) into the FP8 GEMM operand (<see cref="Fp8Operand"/>): E4M3 codes8
/// [rows, cols], FP32 group scales scales8[g·rows + r], flags (count, a mark per row, the list of flagged rows: <see cref="Fp8Operand"/>; the caller zeroes count and marks),
/// the flagged rows' exact values in side [rows, cols]; with a storing kernel also the MXFP4 storage form (codes
/// [rows, cols/2], E8M0 scales) as <see cref="RowKernel{T}"/> writes it.
/// </summary>
public delegate void Fp8RowKernel<T>(ArrayView<T> x, ArrayView<float> ema, ArrayView<byte> codes8, ArrayView<float> scales8, ArrayView<int> flags,
    ArrayView<T> side, ArrayView<byte> codes, ArrayView<byte> scales, int rows, int cols, PhiloxKey seed, ulong stream) where T : unmanaged;

/// <summary>
/// MXFP4 along the first axis of x [rows, cols] into the transposed FP8 operand: codes8 [cols, paddedRows], scales8
/// [paddedRows/128][cols], flags of columns, side [cols, paddedRows]; rows from rows to paddedRows (a multiple of 128) are zeros.
/// </summary>
public delegate void Fp8ColumnKernel<T>(ArrayView<T> x, ArrayView<float> ema, ArrayView<byte> codes8, ArrayView<float> scales8, ArrayView<int> flags,
    ArrayView<T> side, int rows, int cols, int paddedRows, PhiloxKey seed, ulong stream) where T : unmanaged;

/// <summary>As <see cref="Fp8ColumnKernel{T}"/> from the MXFP4 storage form (along the last axis) of a [rows, cols] operand.</summary>
public delegate void Fp8StoredColumnKernel<T>(ArrayView<byte> codes, ArrayView<byte> scales, ArrayView<byte> codes8, ArrayView<float> scales8,
    ArrayView<int> flags, ArrayView<T> side, int rows, int cols, int paddedRows, PhiloxKey seed, ulong stream) where T : unmanaged;

/// <summary>dY [rows, cols] read once into Q3's FP8 operand (as <see cref="Fp8RowKernel{T}"/>) and Q5's transposed one (as <see cref="Fp8ColumnKernel{T}"/>).</summary>
public delegate void Fp8DualKernel<T>(ArrayView<T> x, ArrayView<byte> codes3, ArrayView<float> scales3, ArrayView<int> flags3, ArrayView<T> side3,
    ArrayView<byte> codes5, ArrayView<float> scales5, ArrayView<int> flags5, ArrayView<T> side5, int rows, int cols, int paddedRows,
    PhiloxKey seed, ulong stream3, ulong stream5) where T : unmanaged;

/// <summary>
/// The exact rows and columns of D [m, n] = A [m, k]·B [n, k]ᵀ for the flagged rows of A and of B, from FP8 operands
/// (codes with leading dimension lda / ldb, group-major scales, flags, side copies), plus an optional bias (length n)
/// and optional int64 counters that receive the two flag counts at slotA and slotB.
/// </summary>
public delegate void Fp8PatchKernel<T>(ArrayView<byte> codesA, ArrayView<float> scalesA, ArrayView<int> flagsA, ArrayView<T> sideA,
    ArrayView<byte> codesB, ArrayView<float> scalesB, ArrayView<int> flagsB, ArrayView<T> sideB, ArrayView<T> d, ArrayView<T> bias,
    ArrayView<long> counters, int m, int n, int k, int lda, int ldb, int slotA, int slotB)
    where T : unmanaged;

/// <summary>
/// One kernel entry point in both element types (float32, and bfloat16 as raw 16-bit patterns). Made once, from
/// delegates of the two instantiations, so that launching needs no reflection.
/// </summary>
public sealed class GpuKernel
{
    GpuKernel(MethodInfo f32, MethodInfo bf16) => (F32, Bf16) = (f32, bf16);

    public MethodInfo F32 { get; }
    public MethodInfo Bf16 { get; }

    public MethodInfo For(bool bf16) => bf16 ? Bf16 : F32;

    public static GpuKernel Rows(RowKernel<float> f32, RowKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Columns(ColumnKernel<float> f32, ColumnKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel StoredColumns(StoredColumnKernel<float> f32, StoredColumnKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Dual(DualKernel<float> f32, DualKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Amax(AmaxKernel<float> f32, AmaxKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Unpack(UnpackKernel<float> f32, UnpackKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Fp8Rows(Fp8RowKernel<float> f32, Fp8RowKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Fp8Columns(Fp8ColumnKernel<float> f32, Fp8ColumnKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Fp8StoredColumns(Fp8StoredColumnKernel<float> f32, Fp8StoredColumnKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Fp8Dual(Fp8DualKernel<float> f32, Fp8DualKernel<ushort> bf16) => new(f32.Method, bf16.Method);
    public static GpuKernel Fp8Patch(Fp8PatchKernel<float> f32, Fp8PatchKernel<ushort> bf16) => new(f32.Method, bf16.Method);

    /// <summary>Both instantiations of a generic kernel definition whose first two type parameters are the element I/O.</summary>
    internal static GpuKernel FromDefinition(MethodInfo definition, params Type[] traits) =>
        new(definition.MakeGenericMethod([typeof(F32Io), typeof(float), .. traits]),
            definition.MakeGenericMethod([typeof(Bf16Io), typeof(ushort), .. traits]));

    public override string ToString() => F32.DeclaringType?.Name + "." + F32.Name;
}

/// <summary>
/// One kernel argument as the PTX parameter list takes it: a view ({pointer, length}, 16 bytes, as ILGPU lays out
/// an <c>ArrayView</c>), a 4- or 8-byte scalar, or a <see cref="PhiloxKey"/> (80 bytes, the largest: every argument has
/// its room). Built without boxing; <see cref="CudaRunner"/> passes a pointer to each.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 80)]
public readonly struct KernelArg
{
    readonly long a, b;

    KernelArg(long a, long b) => (this.a, this.b) = (a, b);

    public static KernelArg View(DeviceView v) => new((long)v.Pointer, v.Length);
    public static KernelArg Int(int v) => new(v, 0);
    public static KernelArg UInt(uint v) => new(v, 0);
    public static KernelArg Long(long v) => new(v, 0);
    public static KernelArg ULong(ulong v) => new((long)v, 0);

    /// <summary>A seed's Philox key schedule, laid out as the kernel's <see cref="PhiloxKey"/> parameter.</summary>
    public static KernelArg Key(PhiloxKey key)
    {
        KernelArg arg = default;
        Unsafe.WriteUnaligned(ref Unsafe.As<KernelArg, byte>(ref arg), key);
        return arg;
    }
}
