using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TetraJet.Formats;

namespace TetraJet.Quantization.Cpu;

/// <summary>A rounding mode as a type: the JIT specialises every kernel on it, so no element branches on the mode.</summary>
internal interface IRoundingOps
{
    static abstract bool UsesRandom { get; }
    static abstract bool UsesEma { get; }
    static abstract Vector256<float> Fp4(Vector256<float> v, Vector256<float> u, Vector256<float> e);
    static abstract Vector256<float> Fp8(Vector256<float> v, Vector256<float> u, Vector256<float> e);
    static abstract float Fp4(float v, float u, float e);
    static abstract float Fp8(float v, float u, float e);
}

internal struct NearestOps : IRoundingOps
{
    public static bool UsesRandom => false;
    public static bool UsesEma => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp4(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp4Nearest(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp8(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp8Nearest(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp4(float v, float u, float e) => E2M1.RoundNearest(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp8(float v, float u, float e) => E4M3.Round(v);
}

internal struct StochasticOps : IRoundingOps
{
    public static bool UsesRandom => true;
    public static bool UsesEma => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp4(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp4Stochastic(v, u);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp8(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp8Stochastic(v, u);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp4(float v, float u, float e) => E2M1.RoundStochastic(v, u);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp8(float v, float u, float e) => E4M3Directed.RoundStochastic(v, u);
}

internal struct EmaGuidedOps : IRoundingOps
{
    public static bool UsesRandom => false;
    public static bool UsesEma => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp4(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp4EmaGuided(v, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fp8(Vector256<float> v, Vector256<float> u, Vector256<float> e) => VectorGrid.Fp8EmaGuided(v, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp4(float v, float u, float e) => E2M1.RoundEmaGuided(v, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fp8(float v, float u, float e) => E4M3Directed.RoundEmaGuided(v, e);
}

/// <summary>An MX element format and scale rule as a type (§3.1, §3.4).</summary>
internal interface IMxFormatOps
{
    static abstract int Exponent(float amax);
    static abstract Vector256<float> Round<R>(Vector256<float> v, Vector256<float> u, Vector256<float> e) where R : struct, IRoundingOps;
    static abstract float Round<R>(float v, float u, float e) where R : struct, IRoundingOps;
}

internal struct Mxfp4TetraJet : IMxFormatOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int Exponent(float amax) => E8M0.TetraJetExponent(amax);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round<R>(Vector256<float> v, Vector256<float> u, Vector256<float> e) where R : struct, IRoundingOps => R.Fp4(v, u, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round<R>(float v, float u, float e) where R : struct, IRoundingOps => R.Fp4(v, u, e);
}

internal struct Mxfp4Ocp : IMxFormatOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int Exponent(float amax) => E8M0.OcpExponent(amax);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round<R>(Vector256<float> v, Vector256<float> u, Vector256<float> e) where R : struct, IRoundingOps => R.Fp4(v, u, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round<R>(float v, float u, float e) where R : struct, IRoundingOps => R.Fp4(v, u, e);
}

internal struct Mxfp8 : IMxFormatOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static int Exponent(float amax) => E8M0.Mxfp8Exponent(amax);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round<R>(Vector256<float> v, Vector256<float> u, Vector256<float> e) where R : struct, IRoundingOps => R.Fp8(v, u, e);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round<R>(float v, float u, float e) where R : struct, IRoundingOps => R.Fp8(v, u, e);
}
