using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;
using TetraJet.Formats;

namespace TetraJet.Quantization.Gpu;

/// <summary>
/// IEEE quotients x / d of several elements by one divisor d (an NVFP4 block scale), bit for bit what the division
/// gives, for a fraction of its instructions: the reciprocal r = RN(1/d) once per block (an IEEE division), then per
/// element q0 = x·r, one correction to a faithful q1 and a second (Markstein's theorem: a faithful quotient corrected
/// once with a correctly rounded reciprocal is the correctly rounded quotient) — five FP32 operations where a CUDA
/// division is about ten, with a range check and a slow-path call. Reference: the division itself
/// (<see cref="Divide"/> falls back to it); <c>SharedDivisorTests</c> compare the two over random and edge-case bits.
/// </summary>
/// <remarks>
/// The theorem holds without underflow or overflow in the quotient, the residuals and the reciprocal. Every magnitude
/// is kept far from both limits: d in [2^-60, 2^60], the block's |x| at most 2^60, and no nonzero |x| below 2^-60
/// (so q within [2^-120, 2^120] and the residuals, multiples of about 2^-46·|x|, normal). A block outside this takes
/// the IEEE division. Zeros keep their sign: the residual is taken as d·q − x and subtracted (for x = −0 the usual
/// x − d·q would give +0 and the correction +0 + −0 = +0).
/// </remarks>
public static class SharedDivisor
{
    /// <summary>2^60 and 2^-60 as bits.</summary>
    const uint HugeBits = (127u + 60u) << 23, TinyBits = (127u - 60u) << 23;

    /// <summary>The divisor and the block's amax bits (an upper bound of every |x|) allow the fast quotients.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool BlockFits(float d, uint amax)
    {
        uint b = Bits.AsUInt(d);
        // d positive and normal in [2^-60, 2^60]: one unsigned range test on its bits.
        return b - TinyBits <= HugeBits - TinyBits && amax <= HugeBits;
    }

    /// <summary>x is nonzero and below 2^-60 in magnitude: (|x| bits·2 − 1) wraps zero to the top of the range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Tiny(float x) => (Bits.AsUInt(x) << 1) - 1u < (TinyBits << 1) - 1u;

    /// <summary>Any of eight elements is <see cref="Tiny"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyTiny(Vec8 v) =>
        Tiny(v.V0) | Tiny(v.V1) | Tiny(v.V2) | Tiny(v.V3) | Tiny(v.V4) | Tiny(v.V5) | Tiny(v.V6) | Tiny(v.V7);

    /// <summary>
    /// x / d given r = RN(1/d), for x and d in the ranges above (the caller checks): the steps on CUDA, the division
    /// itself on the CPU accelerator (which runs the kernels' .NET code, where ILGPU has no FMA to compile).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Quotient(float x, float d, float r) => CudaAsm.IsSupported ? Steps<PtxFma>(x, d, r) : x / d;

    /// <summary>The correction steps with the FMA <typeparamref name="TFma"/> (the tests run them with .NET's).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Steps<TFma>(float x, float d, float r) where TFma : struct, IFma
    {
        var f = default(TFma);
        float q = x * r;
        q = f.Fma(-f.Fma(d, q, -x), r, q);
        return f.Fma(-f.Fma(d, q, -x), r, q);
    }

    /// <summary>Eight quotients v / d: the fast steps where the block fits (<see cref="BlockFits"/>, no tiny element), IEEE divisions otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec8 Divide(Vec8 v, float d, uint amax) => BlockFits(d, amax) && !AnyTiny(v) ? Quotients(v, d, 1f / d) : Divisions(v, d);

    /// <summary>
    /// The sixteen quotients of an NVFP4 inner block held as two runs, with one range check and one reciprocal for both
    /// (<see cref="Divide"/> per run takes each twice). With <paramref name="quarters"/> (a constant at the call) the
    /// runs hold the RHT's unscaled sums h (<see cref="KernelMath.Hadamard16Unscaled"/>) and the quotients are
    /// RN(h·0.25) / d: where the block fits with the divisor 4d the fast steps give RN(h / 4d), the same value, because
    /// every such h·0.25 is exact (|h| ≥ 2^-60 keeps it normal); otherwise the quarters, then IEEE divisions, as the
    /// reference orders them. <paramref name="amax"/> bounds every |element| of both runs (of the sums with quarters).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DividePair(Vec8 lo, Vec8 hi, float d, uint amax, bool quarters, out Vec8 qLo, out Vec8 qHi)
    {
        float dd = quarters ? d * 4f : d;
        if (BlockFits(dd, amax) && !(AnyTiny(lo) | AnyTiny(hi)))
        {
            float r = 1f / dd;
            qLo = Quotients(lo, dd, r);
            qHi = Quotients(hi, dd, r);
            return;
        }
        if (quarters)
        {
            lo = lo.Times(0.25f);
            hi = hi.Times(0.25f);
        }
        qLo = Divisions(lo, d);
        qHi = Divisions(hi, d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 Quotients(Vec8 v, float d, float r) => new()
    {
        V0 = Quotient(v.V0, d, r), V1 = Quotient(v.V1, d, r), V2 = Quotient(v.V2, d, r), V3 = Quotient(v.V3, d, r),
        V4 = Quotient(v.V4, d, r), V5 = Quotient(v.V5, d, r), V6 = Quotient(v.V6, d, r), V7 = Quotient(v.V7, d, r),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vec8 Divisions(Vec8 v, float d) =>
        new() { V0 = v.V0 / d, V1 = v.V1 / d, V2 = v.V2 / d, V3 = v.V3 / d, V4 = v.V4 / d, V5 = v.V5 / d, V6 = v.V6 / d, V7 = v.V7 / d };
}

/// <summary>a·b + c with one rounding.</summary>
public interface IFma
{
    float Fma(float a, float b, float c);
}

/// <summary><c>fma.rn.f32</c> in inline PTX (ILGPU has no FMA intrinsic); used only where <see cref="CudaAsm.IsSupported"/>.</summary>
public readonly struct PtxFma : IFma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Fma(float a, float b, float c)
    {
        Output<float> o = default;
        Input<float> x = a, y = b, z = c;
        CudaAsm.EmitRef("fma.rn.f32 %0, %1, %2, %3;", ref o, ref x, ref y, ref z);
        return o.Value;
    }
}

/// <summary>.NET's fused multiply-add, for checking <see cref="SharedDivisor.Steps{TFma}"/> on the CPU (not compiled into kernels).</summary>
public readonly struct DotNetFma : IFma
{
    public float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
}
