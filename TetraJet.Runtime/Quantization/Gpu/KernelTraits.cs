using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace TetraJet.Quantization.Gpu;

// Compile-time configuration of the kernels. Every trait is an empty struct whose members return constants, so
// ILGPU specialises each generic kernel instantiation and folds the branches away: no format is chosen at run time.

/// <summary>Reads and writes tensor elements of storage type <typeparamref name="T"/> as FP32.</summary>
public interface IElementIo<T> where T : unmanaged
{
    float Load(ArrayView<T> v, long i);
    void Store(ArrayView<T> v, long i, float x);
    /// <summary>Eight values as they read back after a store: what values kept in this storage type hold (for bfloat16 two per conversion on CUDA).</summary>
    Vec8 Round8(Vec8 x);
    /// <summary>
    /// Elements [i, i + 8) by 16-byte vector loads: the view must be 16-byte aligned and i a multiple of
    /// 16 bytes' worth of elements (4 for float32, 8 for bfloat16).
    /// </summary>
    Vec8 Load8(ArrayView<T> v, long i);
    /// <summary>As <see cref="Load8"/> in two steps: the loads (bits as read) …</summary>
    Bits8 LoadBits8(ArrayView<T> v, long i);
    /// <summary>… and the widening to FP32, which is the first use of the loaded registers (a warp waits for its loads there).</summary>
    Vec8 Widen8(Bits8 b);
    /// <summary>Elements [i, i + 8) by 16-byte vector stores; alignment as <see cref="Load8"/>.</summary>
    void Store8(ArrayView<T> v, long i, Vec8 x);
    /// <summary>
    /// As <see cref="Store8"/> for values this type holds exactly (MXFP4 values: two significant bits times a power of
    /// two): no rounding step, the same bits as <see cref="Store8"/>, NaN written as the canonical NaN. With
    /// <paramref name="finite"/> the caller knows all eight are finite (decided once per block or column set), and
    /// no element is tested.
    /// </summary>
    void Store8Exact(ArrayView<T> v, long i, Vec8 x, bool finite);
}

/// <summary>float32 storage: loads and stores are exact.</summary>
public readonly struct F32Io : IElementIo<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Load(ArrayView<float> v, long i) => v[i];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<float> v, long i, float x) => v[i] = x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Round8(Vec8 x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Load8(ArrayView<float> v, long i) => Widen8(LoadBits8(v, i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Bits8 LoadBits8(ArrayView<float> v, long i)
    {
        var w = Vec8Io.Wide(v);
        return new Bits8 { Lo = w[i >> 2], Hi = w[(i >> 2) + 1] };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Widen8(Bits8 b) => new()
    {
        V0 = Formats.Bits.AsFloat(b.Lo.A), V1 = Formats.Bits.AsFloat(b.Lo.B), V2 = Formats.Bits.AsFloat(b.Lo.C), V3 = Formats.Bits.AsFloat(b.Lo.D),
        V4 = Formats.Bits.AsFloat(b.Hi.A), V5 = Formats.Bits.AsFloat(b.Hi.B), V6 = Formats.Bits.AsFloat(b.Hi.C), V7 = Formats.Bits.AsFloat(b.Hi.D),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store8(ArrayView<float> v, long i, Vec8 x)
    {
        var w = Vec8Io.Wide(v);
        w[i >> 2] = new Bytes16 { A = Formats.Bits.AsUInt(x.V0), B = Formats.Bits.AsUInt(x.V1), C = Formats.Bits.AsUInt(x.V2), D = Formats.Bits.AsUInt(x.V3) };
        w[(i >> 2) + 1] = new Bytes16 { A = Formats.Bits.AsUInt(x.V4), B = Formats.Bits.AsUInt(x.V5), C = Formats.Bits.AsUInt(x.V6), D = Formats.Bits.AsUInt(x.V7) };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store8Exact(ArrayView<float> v, long i, Vec8 x, bool finite) => Store8(v, i, x);
}

/// <summary>
/// bfloat16 storage as raw bits: widened exactly, narrowed with RNE as torch does (a NaN stays a NaN; its payload is not
/// part of the contract: <see cref="Bf16.NarrowPair"/>).
/// </summary>
public readonly struct Bf16Io : IElementIo<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Load(ArrayView<ushort> v, long i) => Bf16.Widen(v[i]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<ushort> v, long i, float x) => v[i] = Bf16.Narrow(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Round8(Vec8 x) => Widen8(new Bits8
    {
        Lo = new Bytes16 { A = Bf16.NarrowPair(x.V0, x.V1), B = Bf16.NarrowPair(x.V2, x.V3), C = Bf16.NarrowPair(x.V4, x.V5), D = Bf16.NarrowPair(x.V6, x.V7) },
    });

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Load8(ArrayView<ushort> v, long i) => Widen8(LoadBits8(v, i));

    /// <summary>One 16-byte load (<see cref="Bits8.Hi"/> unused).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Bits8 LoadBits8(ArrayView<ushort> v, long i) => new() { Lo = Vec8Io.Wide(v)[i >> 3] };

    /// <summary>Little-endian: element 2k is the low half of word k. Widening is the bits moved up (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vec8 Widen8(Bits8 b)
    {
        Bytes16 a = b.Lo;
        return new Vec8
        {
            V0 = Formats.Bits.AsFloat(a.A << 16), V1 = Formats.Bits.AsFloat(a.A & 0xFFFF0000u),
            V2 = Formats.Bits.AsFloat(a.B << 16), V3 = Formats.Bits.AsFloat(a.B & 0xFFFF0000u),
            V4 = Formats.Bits.AsFloat(a.C << 16), V5 = Formats.Bits.AsFloat(a.C & 0xFFFF0000u),
            V6 = Formats.Bits.AsFloat(a.D << 16), V7 = Formats.Bits.AsFloat(a.D & 0xFFFF0000u),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store8(ArrayView<ushort> v, long i, Vec8 x) => Vec8Io.Wide(v)[i >> 3] = new Bytes16
    {
        A = Bf16.NarrowPair(x.V0, x.V1),
        B = Bf16.NarrowPair(x.V2, x.V3),
        C = Bf16.NarrowPair(x.V4, x.V5),
        D = Bf16.NarrowPair(x.V6, x.V7),
    };

    /// <remarks>A finite value's bfloat16 bits are the upper half of its float bits, so a word of two is two upper halves.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store8Exact(ArrayView<ushort> v, long i, Vec8 x, bool finite)
    {
        var w = Vec8Io.Wide(v);
        if (finite)
            w[i >> 3] = new Bytes16 { A = Uppers(x.V0, x.V1), B = Uppers(x.V2, x.V3), C = Uppers(x.V4, x.V5), D = Uppers(x.V6, x.V7) };
        else
            w[i >> 3] = new Bytes16
            {
                A = Bf16.Truncate(x.V0) | Bf16.Truncate(x.V1) << 16,
                B = Bf16.Truncate(x.V2) | Bf16.Truncate(x.V3) << 16,
                C = Bf16.Truncate(x.V4) | Bf16.Truncate(x.V5) << 16,
                D = Bf16.Truncate(x.V6) | Bf16.Truncate(x.V7) << 16,
            };
    }

    /// <summary>The bfloat16 bits of two finite floats bfloat16 holds exactly: their upper halves, <paramref name="lo"/>'s in the low half-word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Uppers(float lo, float hi) => Formats.Bits.AsUInt(lo) >> 16 | (Formats.Bits.AsUInt(hi) & 0xFFFF0000u);
}

/// <summary>bfloat16 conversions (torch's c10::BFloat16 round_to_nearest_even).</summary>
public static class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(ushort bits) => Formats.Bits.AsFloat((uint)bits << 16);

    /// <summary>The bfloat16 bits of a value bfloat16 holds exactly (its low 16 bits are zero), NaN as 0x7FC0: Narrow's result without its rounding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Truncate(float x)
    {
        uint b = Formats.Bits.AsUInt(x);
        return (b & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : b >> 16;
    }

    /// <summary>
    /// <see cref="Narrow"/> of two values, <paramref name="lo"/>'s bits in the low half-word. On CUDA one
    /// <c>cvt.rn.bf16x2.f32</c> (sm_80 and newer): the same RNE, subnormals kept, in one instruction for the pair where
    /// the integer rounding takes about six per element; its NaN is the canonical 0x7FFF rather than 0x7FC0, and every
    /// comparison of outputs takes any NaN for any NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NarrowPair(float lo, float hi)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> packed = default;
            Input<float> a = hi, b = lo;
            // The first source goes to the upper half-word.
            CudaAsm.EmitRef("cvt.rn.bf16x2.f32 %0, %1, %2;", ref packed, ref a, ref b);
            return packed.Value;
        }
        return Narrow(lo) | (uint)Narrow(hi) << 16;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Narrow(float x)
    {
        uint b = Formats.Bits.AsUInt(x);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
        return (ushort)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    }
}

/// <summary>The rounding mode as a compile-time constant.</summary>
public interface IRoundingMode
{
    Rounding Mode { get; }
}

public readonly struct RoundNearest : IRoundingMode { public Rounding Mode => Rounding.Nearest; }
public readonly struct RoundStochastic : IRoundingMode { public Rounding Mode => Rounding.Stochastic; }
public readonly struct RoundEmaGuided : IRoundingMode { public Rounding Mode => Rounding.EmaGuided; }

/// <summary>MX element format and scale rule as compile-time constants.</summary>
public interface IMxRule
{
    bool Fp8 { get; }
    ScaleRule Rule { get; }
}

public readonly struct Mxfp4TetraJet : IMxRule { public bool Fp8 => false; public ScaleRule Rule => ScaleRule.TetraJet; }
public readonly struct Mxfp4Ocp : IMxRule { public bool Fp8 => false; public ScaleRule Rule => ScaleRule.Ocp; }
public readonly struct Mxfp8 : IMxRule { public bool Fp8 => true; public ScaleRule Rule => ScaleRule.TetraJet; }

/// <summary>Where the NVFP4 outer (FP32) scale comes from: the 128-block's own amax, or the per-tensor amax buffer.</summary>
public interface INvOuter
{
    bool PerTensor { get; }
}

public readonly struct NvOuter128 : INvOuter { public bool PerTensor => false; }
public readonly struct NvOuterTensor : INvOuter { public bool PerTensor => true; }

/// <summary>Whether the 16-point random Hadamard transform is applied along the block axis before quantizing.</summary>
public interface IHadamardMode
{
    bool Enabled { get; }
}

public readonly struct NoHadamard : IHadamardMode { public bool Enabled => false; }
public readonly struct WithHadamard : IHadamardMode { public bool Enabled => true; }

/// <summary>Whether a features-axis kernel also writes the operand's storage form (codes and scales) in the same pass.</summary>
public interface IStoreMode
{
    bool Enabled { get; }
}

public readonly struct NoStore : IStoreMode { public bool Enabled => false; }
public readonly struct Store : IStoreMode { public bool Enabled => true; }
