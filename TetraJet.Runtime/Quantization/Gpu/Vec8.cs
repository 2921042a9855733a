using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using TetraJet.Formats;
using TetraJet.Randomness;
using static TetraJet.Quantization.Gpu.KernelMath;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// Sixteen bytes moved by one vector load or store (<c>ld.global.v4.u32</c>): what a view cast to this type and marked
/// 16-byte aligned reads per element. Eight bfloat16 values or four float32 values.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
public struct Bytes16
{
    public uint A, B, C, D;
}

/// <summary>Eight elements' bits as one or two vector loads read them, before widening (<see cref="IElementIo{T}.LoadBits8"/>).</summary>
public struct Bits8
{
    public Bytes16 Lo, Hi;

    /// <summary>Every word and <paramref name="mask"/> (all ones or zero: a select without a branch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly Bits8 And(uint mask) => new()
    {
        Lo = new Bytes16 { A = Lo.A & mask, B = Lo.B & mask, C = Lo.C & mask, D = Lo.D & mask },
        Hi = new Bytes16 { A = Hi.A & mask, B = Hi.B & mask, C = Hi.C & mask, D = Hi.D & mask },
    };
}

/// <summary>Eight elements and their SR uniforms, as ticks (<see cref="Vec8Io.LoadWithUniforms"/>, <see cref="KernelMath.Ticks"/>).</summary>
public struct Loaded8
{
    public Vec8 V, U;
}

/// <summary>
/// Eight consecutive elements held by one thread, as FP32. Kernels keep it in registers (ILGPU does not unroll loops,
/// so every per-element step is written out for the eight fields).
/// </summary>
public struct Vec8
{
    public float V0, V1, V2, V3, V4, V5, V6, V7;

    /// <summary>
    /// The largest |x| bit pattern of the eight: for finite values and Inf the bits of the largest |x|; where any element
    /// is NaN, some NaN's bits (at or above <see cref="KernelMath.NonFiniteBits"/>, which is all a caller tests of them).
    /// </summary>
    /// <remarks>
    /// On CUDA seven <c>max.NaN.f32</c> of the |x| (PTX, sm_80): ptxas folds the absolute values into its FMNMX
    /// instructions as operand modifiers, one instruction per element where the integer maxima of the doubled bits below
    /// take two; the NaN variant keeps a NaN where the plain float maximum would drop it. Elsewhere the max of the bits
    /// doubled (the sign shifted out), halved once. For non-negative floats and +Inf the unsigned order of the bits is the
    /// float order, so both give the same bits whenever no element is NaN (subnormals included: no flush to zero).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly uint AbsMax()
    {
        if (CudaAsm.IsSupported)
        {
            Output<float> m = default;
            Input<float> a = V0, b = V1, c = V2, d = V3, e = V4, f = V5, g = V6, h = V7;
            CudaAsm.EmitRef("{\n\t.reg .f32 t0, t1, t2, t3, t4, t5, t6, t7;"
                + "\n\tabs.f32 t0, %1;\n\tabs.f32 t1, %2;\n\tabs.f32 t2, %3;\n\tabs.f32 t3, %4;"
                + "\n\tabs.f32 t4, %5;\n\tabs.f32 t5, %6;\n\tabs.f32 t6, %7;\n\tabs.f32 t7, %8;"
                + "\n\tmax.NaN.f32 t0, t0, t1;\n\tmax.NaN.f32 t2, t2, t3;\n\tmax.NaN.f32 t4, t4, t5;\n\tmax.NaN.f32 t6, t6, t7;"
                + "\n\tmax.NaN.f32 t0, t0, t2;\n\tmax.NaN.f32 t4, t4, t6;\n\tmax.NaN.f32 %0, t0, t4;\n\t}",
                ref m, ref a, ref b, ref c, ref d, ref e, ref f, ref g, ref h);
            return Bits.AsUInt(m.Value);
        }
        return Max(Max(Max(Doubled(V0), Doubled(V1)), Max(Doubled(V2), Doubled(V3))), Max(Max(Doubled(V4), Doubled(V5)), Max(Doubled(V6), Doubled(V7)))) >> 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Doubled(float x) => Bits.AsUInt(x) * 2u;

    /// <summary>Every element times <paramref name="s"/> (one FP32 rounding each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly Vec8 Times(float s) => new() { V0 = V0 * s, V1 = V1 * s, V2 = V2 * s, V3 = V3 * s, V4 = V4 * s, V5 = V5 * s, V6 = V6 * s, V7 = V7 * s };

    /// <summary>Element <paramref name="k"/> (0..7); a select chain, for the rare per-element paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float Get(int k) => k < 4
        ? (k < 2 ? (k == 0 ? V0 : V1) : (k == 2 ? V2 : V3))
        : (k < 6 ? (k == 4 ? V4 : V5) : (k == 6 ? V6 : V7));
}

/// <summary>Loads and stores of <see cref="Vec8"/>: vector accesses where the layout allows, element by element otherwise.</summary>
public static class Vec8Io
{
    /// <summary>
    /// Elements [i, i + n) of <paramref name="v"/> (n ≤ 8; zeros past n). With <paramref name="vector"/> (n = 8, i a
    /// multiple of 8, the view 16-byte aligned) one or two 16-byte loads, else one load per element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Load<TIo, T>(ArrayView<T> v, long i, int n, bool vector) where T : unmanaged where TIo : struct, IElementIo<T>
    {
        if (vector) return default(TIo).Load8(v, i);
        var io = default(TIo);
        Vec8 r = default;
        if (n > 0) r.V0 = io.Load(v, i);
        if (n > 1) r.V1 = io.Load(v, i + 1);
        if (n > 2) r.V2 = io.Load(v, i + 2);
        if (n > 3) r.V3 = io.Load(v, i + 3);
        if (n > 4) r.V4 = io.Load(v, i + 4);
        if (n > 5) r.V5 = io.Load(v, i + 5);
        if (n > 6) r.V6 = io.Load(v, i + 6);
        if (n > 7) r.V7 = io.Load(v, i + 7);
        return r;
    }

    /// <summary>
    /// <see cref="Load"/> and the SR uniforms of the same elements (KernelMath.Uniforms, one Philox block per 4 where
    /// <paramref name="vector"/>). On the vector path the uniforms are computed between the load and the widening, its
    /// data's first use: a warp waits for a load only where its data is first used, so the Philox rounds run in the
    /// load's latency instead of after it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Loaded8 LoadWithUniforms<TIo, T, TRound>(ArrayView<T> v, long i, int n, bool vector, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode =>
        WithUniforms<TIo, T, TRound>(v, Prefetch<TIo, T>(v, i, vector), i, n, vector, seed, stream);

    /// <summary>The bits of the run at <paramref name="i"/> on the vector path (a load issued ahead of its use); nothing otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Bits8 Prefetch<TIo, T>(ArrayView<T> v, long i, bool vector) where T : unmanaged where TIo : struct, IElementIo<T> =>
        vector ? default(TIo).LoadBits8(v, i) : default;

    /// <summary>
    /// As <see cref="LoadWithUniforms"/> for a run whose vector bits <see cref="Prefetch"/> loaded: the uniforms first,
    /// then the widening (the first use of the load). Off the vector path the run is loaded here, element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Loaded8 WithUniforms<TIo, T, TRound>(ArrayView<T> v, Bits8 bits, long i, int n, bool vector, PhiloxKey seed, ulong stream)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        if (vector)
        {
            Vec8 u = Uniforms<TRound>(seed, stream, i, 8, true);
            return new Loaded8 { V = default(TIo).Widen8(bits), U = u };
        }
        return new Loaded8 { V = Load<TIo, T>(v, i, n, false), U = Uniforms<TRound>(seed, stream, i, n, false) };
    }

    /// <summary>
    /// <see cref="WithUniforms"/> for two runs whose vector bits <see cref="Prefetch"/> loaded: where both are on the
    /// vector path their uniforms come from one <see cref="KernelMath.UniformsPair{TRound}"/> (the same values).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WithUniformsPair<TIo, T, TRound>(ArrayView<T> v, Bits8 bitsA, long ia, int na, bool vectorA, Bits8 bitsB, long ib, int nb,
        bool vectorB, PhiloxKey seed, ulong stream, out Loaded8 a, out Loaded8 b)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        if (vectorA && vectorB)
        {
            UniformsPair<TRound>(seed, stream, ia, ib, out Vec8 ua, out Vec8 ub);
            a = new Loaded8 { V = default(TIo).Widen8(bitsA), U = ua };
            b = new Loaded8 { V = default(TIo).Widen8(bitsB), U = ub };
            return;
        }
        a = WithUniforms<TIo, T, TRound>(v, bitsA, ia, na, vectorA, seed, stream);
        b = WithUniforms<TIo, T, TRound>(v, bitsB, ib, nb, vectorB, seed, stream);
    }

    /// <summary>
    /// As <see cref="LoadWithUniforms"/> for two runs at <paramref name="ia"/> and <paramref name="ib"/> of a column of
    /// runs whose last existing one is at <paramref name="last"/>: a run past it reads as zeros. Both loads, both runs'
    /// uniforms, then the widening. On the vector path a run past the end loads the last one and is masked to zero,
    /// without a branch, so that the loads and the Philox rounds share one basic block, where the PTX assembler can
    /// schedule the rounds into the loads' latency (ILGPU turns conditional expressions into branches).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPairWithUniforms<TIo, T, TRound>(ArrayView<T> v, long ia, long ib, long last, int n, bool vector,
        PhiloxKey seed, ulong stream, out Loaded8 a, out Loaded8 b)
        where T : unmanaged where TIo : struct, IElementIo<T> where TRound : struct, IRoundingMode
    {
        var io = default(TIo);
        if (vector)
        {
            Bits8 bitsA = io.LoadBits8(v, Math.Min(ia, last)), bitsB = io.LoadBits8(v, Math.Min(ib, last));
            UniformsPair<TRound>(seed, stream, ia, ib, out Vec8 ua, out Vec8 ub);
            // All ones where the run exists (last − i ≥ 0), else zero.
            uint maskA = ~(uint)((last - ia) >> 63), maskB = ~(uint)((last - ib) >> 63);
            a = new Loaded8 { V = io.Widen8(bitsA.And(maskA)), U = ua };
            b = new Loaded8 { V = io.Widen8(bitsB.And(maskB)), U = ub };
            return;
        }
        a = new Loaded8 { V = ia <= last ? Load<TIo, T>(v, ia, n, false) : default, U = Uniforms<TRound>(seed, stream, ia, n, false) };
        b = new Loaded8 { V = ib <= last ? Load<TIo, T>(v, ib, n, false) : default, U = Uniforms<TRound>(seed, stream, ib, n, false) };
    }

    /// <summary>Stores the first <paramref name="n"/> elements of <paramref name="x"/> at [i, i + n); as <see cref="Load"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TIo, T>(ArrayView<T> v, long i, int n, bool vector, Vec8 x) where T : unmanaged where TIo : struct, IElementIo<T>
    {
        if (vector) { default(TIo).Store8(v, i, x); return; }
        var io = default(TIo);
        if (n > 0) io.Store(v, i, x.V0);
        if (n > 1) io.Store(v, i + 1, x.V1);
        if (n > 2) io.Store(v, i + 2, x.V2);
        if (n > 3) io.Store(v, i + 3, x.V3);
        if (n > 4) io.Store(v, i + 4, x.V4);
        if (n > 5) io.Store(v, i + 5, x.V5);
        if (n > 6) io.Store(v, i + 6, x.V6);
        if (n > 7) io.Store(v, i + 7, x.V7);
    }

    /// <summary>As <see cref="Store"/> for values the element type holds exactly, all finite where <paramref name="finite"/> (no rounding step; see IElementIo.Store8Exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreExact<TIo, T>(ArrayView<T> v, long i, int n, bool vector, Vec8 x, bool finite) where T : unmanaged where TIo : struct, IElementIo<T>
    {
        if (vector) default(TIo).Store8Exact(v, i, x, finite);
        else Store<TIo, T>(v, i, n, false, x);
    }

    /// <summary>The EMA of elements [i, i + n) for EMA-guided rounding, zeros otherwise (no load).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Ema<TRound>(ArrayView<float> ema, long i, int n, bool vector) where TRound : struct, IRoundingMode =>
        default(TRound).Mode == Rounding.EmaGuided ? Load<F32Io, float>(ema, i, n, vector) : default;

    /// <summary>Eight floats from a 16-byte aligned float view at a multiple of 4 (shared-memory tiles): two vector loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 LoadFloats(ArrayView<float> v, int i) => default(F32Io).Load8(v, i);

    /// <summary>Eight floats to a 16-byte aligned float view at a multiple of 4: two vector stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFloats(ArrayView<float> v, int i, Vec8 x) => default(F32Io).Store8(v, i, x);

    /// <summary><paramref name="v"/> as 16-byte elements, marked aligned so that ILGPU emits vector accesses.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ArrayView<Bytes16> Wide<T>(ArrayView<T> v) where T : unmanaged => v.Cast<Bytes16>().AsAligned16();
}
