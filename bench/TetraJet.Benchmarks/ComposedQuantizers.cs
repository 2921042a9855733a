using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Benchmarks;

/// <summary>
/// MXFP4 and NVFP4 round-to-nearest written as composed TorchSharp tensor ops, the way a user would without TetraJet:
/// reshape into blocks, amax, an exact exponent via frexp, divide, round by comparisons and a lookup, multiply.
/// The baseline of the CPU benchmark; a unit test checks it gives the reference's bits on finite [rows, cols] inputs.
/// </summary>
public static class ComposedQuantizers
{
    static readonly float[] Grid = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];

    /// <summary>E2M1 round to nearest, ties to the even code, of already-scaled values.</summary>
    static Tensor NearestE2M1(Tensor v)
    {
        var a = v.abs();
        var code = a.gt(0.25).to(ScalarType.Int64) + a.ge(0.75).to(ScalarType.Int64) + a.gt(1.25).to(ScalarType.Int64)
                 + a.ge(1.75).to(ScalarType.Int64) + a.gt(2.5).to(ScalarType.Int64) + a.ge(3.5).to(ScalarType.Int64)
                 + a.gt(5.0).to(ScalarType.Int64);
        var grid = tensor(Grid);
        return grid.take(code).copysign(v);
    }

    /// <summary>MXFP4, TetraJet scale rule (smallest s with amax ≤ 6·2^s), blocks of 32 along the last axis.</summary>
    public static Tensor Mxfp4(Tensor x)
    {
        using var scope = NewDisposeScope();
        long rows = x.shape[0], cols = x.shape[1];
        var blocks = x.reshape(rows, cols / 32, 32);
        var amax = blocks.abs().amax([-1], keepdim: true);
        var (m, e) = amax.frexp();                                       // amax = m·2^e, m ∈ [0.5, 1)
        var s = where(m.le(0.75), e - 3, e - 2).clamp(-127, 127);
        var scale = exp2(s.to(ScalarType.Float32));
        var q = NearestE2M1(blocks / scale) * scale;
        return q.masked_fill(amax.eq(0), 0f).reshape(rows, cols).MoveToOuterDisposeScope();
    }

    /// <summary>E4M3 round to nearest even with saturation to 448, for non-negative finite values.</summary>
    static Tensor RoundE4M3(Tensor t)
    {
        var (_, e) = t.frexp();
        var quantum = exp2(((e - 1).clamp_min(-6) - 3).to(ScalarType.Float32));   // 3 fraction bits; fixed 2^-9 below 2^-6
        return ((t / quantum).round() * quantum).clamp_max(448f);
    }

    /// <summary>NVFP4 (TetraJet-v2): outer blocks of 128 with an FP32 scale, inner blocks of 16 with an E4M3 scale.</summary>
    public static Tensor Nvfp4(Tensor x)
    {
        using var scope = NewDisposeScope();
        long rows = x.shape[0], cols = x.shape[1];
        var inner = x.reshape(rows, cols / 128, 8, 16);
        var amaxO = inner.abs().amax([-2, -1], keepdim: true);
        var so = amaxO / 2688f;
        var d = so * 6f;
        var amaxI = inner.abs().amax([-1], keepdim: true);
        var si = RoundE4M3(amaxI / d).masked_fill(d.eq(0), 0f);
        var scale = si * so;
        var q = NearestE2M1(inner / scale) * scale;
        return q.masked_fill(scale.eq(0), 0f).reshape(rows, cols).MoveToOuterDisposeScope();
    }
}
