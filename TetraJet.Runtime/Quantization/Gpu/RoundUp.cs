using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace TetraJet.Quantization.Gpu;

/// <summary>FP32 operations rounded toward +∞ (IEEE roundTowardPositive): the smallest float at or above the exact result.</summary>
public interface IRoundUp
{
    /// <summary>a·b + c with one rounding up.</summary>
    float Fma(float a, float b, float c);

    /// <summary>a + b rounded up.</summary>
    float Add(float a, float b);
}

/// <summary><c>fma.rp.f32</c> and <c>add.rp.f32</c> in inline PTX (full-rate FFMA/FADD with a rounding mode; ILGPU has no
/// directed rounding); used only where <see cref="CudaAsm.IsSupported"/>. No <c>.ftz</c>: subnormals are kept.</summary>
public readonly struct PtxRoundUp : IRoundUp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Fma(float a, float b, float c)
    {
        Output<float> o = default;
        Input<float> x = a, y = b, z = c;
        CudaAsm.EmitRef("fma.rp.f32 %0, %1, %2, %3;", ref o, ref x, ref y, ref z);
        return o.Value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b)
    {
        Output<float> o = default;
        Input<float> x = a, y = b;
        CudaAsm.EmitRef("add.rp.f32 %0, %1, %2;", ref o, ref x, ref y);
        return o.Value;
    }
}

/// <summary>
/// Rounding up on the CPU, for checking the kernels' directed-rounding steps against the references (not compiled into
/// kernels). The exact result is held as an unevaluated sum of two doubles (the product of two floats is exact in double,
/// the sum's error exact by TwoSum); its nearest float r is then moved up one step where the exact value lies above it.
/// </summary>
public readonly struct DotNetRoundUp : IRoundUp
{
    public float Fma(float a, float b, float c) => Up((double)a * b, c);

    public float Add(float a, float b) => Up(a, b);

    static float Up(double p, double c)
    {
        double s = p + c, bp = s - c, e = (p - bp) + (c - (s - bp));
        if (double.IsInfinity(s)) return (float)s;
        float r = (float)s;
        // Exact value − r = (s − r) + e; s − r is exact (r is s's nearest float), so the sign of the rounded sum is the sign of the exact one.
        double above = (s - r) + e;
        return above > 0 ? MathF.BitIncrement(r) : r;
    }
}
