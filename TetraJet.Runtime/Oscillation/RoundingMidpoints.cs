using TetraJet.Formats;
using TetraJet.Quantization;
using static TorchSharp.torch;

namespace TetraJet.Oscillation;

/// <summary>
/// How near each element of a weight lies to a rounding midpoint of the E2M1 grid under the scale that its forward
/// quantizer (Q2, blocks along the last axis) gives it: the elements nearest a midpoint are those a small step flips,
/// the ones lean OsciReset tracks (ALGORITHMS.md §5). Torch ops on the weight's own device, so CPU and CUDA agree.
/// </summary>
/// <remarks>
/// The scales follow §3 step for step (the same amax, FP32 divisions and E4M3 rounding as <see cref="ScalarCore"/>),
/// so that <c>RTN(scaled)·scale</c> is exactly <see cref="Quantizer.Quantize"/>'s output; the tests check that.
/// Only the scale computation is repeated here: the quantizer kernels return values, not their scales.
/// </remarks>
public static class RoundingMidpoints
{
    /// <summary>RTN's decision points on E2M1 magnitudes: halfway between neighbouring grid values.</summary>
    static readonly float[] Midpoints = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f];

    /// <summary>Halfway between neighbouring midpoints (exact in float32): the edges of each midpoint's nearest range.</summary>
    static readonly float[] Cuts = Midpoints.Zip(Midpoints.Skip(1), (a, b) => (a + b) / 2).ToArray();

    /// <summary>2^k for k = −127 … 127, exact (2^-127 is subnormal), looked up rather than computed by pow.</summary>
    static readonly float[] Pow2Table = Enumerable.Range(-127, 255).Select(Bits.Pow2).ToArray();

    /// <summary>
    /// The scaled value w/s of every element (the value RTN rounds onto the E2M1 grid) and its scale s, both float32
    /// of <paramref name="w"/>'s shape, viewed as [rows, cols] with blocks along cols. A block with a NaN or ±Inf
    /// gives NaN, as in the quantizer; a zero scale gives scaled value 0.
    /// </summary>
    public static (Tensor Scaled, Tensor Scale) Scale(Tensor w, QuantSpec spec)
    {
        if (w.dim() < 1) throw new ArgumentException("cannot scale a rank-0 tensor; expected [..., features]");
        using var scope = NewDisposeScope();
        long cols = w.size(-1), rows = cols == 0 ? 0 : w.numel() / cols;
        var x = w.detach().to(ScalarType.Float32).reshape(rows, cols);
        var (scaled, scale) = spec.Format switch
        {
            QuantFormat.None => (x.clone(), ones_like(x)),
            QuantFormat.MXFP4 => Mx(x, spec.ScaleRule),
            QuantFormat.NVFP4 => Nv(x, outerBlock: 128, tile: false),
            QuantFormat.NVFP4Tensor => Nv(x, outerBlock: 0, spec.Tile16),
            _ => throw new ArgumentException($"{spec.Format} has no E2M1 grid; lean OsciReset needs an FP4 forward weight quantizer"),
        };
        return (scaled.reshape(w.shape).MoveToOuterDisposeScope(), scale.reshape(w.shape).MoveToOuterDisposeScope());
    }

    /// <summary>|w/s − m| for the E2M1 midpoint m nearest |w/s| (float32, w's shape); +∞ where w/s is NaN, so never chosen.</summary>
    public static Tensor Distance(Tensor w, QuantSpec spec)
    {
        using var scope = NewDisposeScope();
        var a = Scale(w, spec).Scaled.abs_();
        // One lookup instead of seven comparisons: the cuts halfway between midpoints bound each one's nearest range.
        var region = a.bucketize(tensor(Cuts, device: a.device), outInt32: true);
        var nearest = tensor(Midpoints, device: a.device).index_select(0, region.flatten()).view_as(a);
        var d = a.sub_(nearest).abs_();
        return d.masked_fill_(d.isnan(), float.PositiveInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat (row-major) indices of the <paramref name="count"/> elements nearest a midpoint, ascending (int64).
    /// Equal distances go to the lower index, so every device picks the same elements.
    /// </summary>
    public static Tensor Nearest(Tensor w, QuantSpec spec, long count)
    {
        using var scope = NewDisposeScope();
        var d = Distance(w, spec).flatten();
        count = Math.Clamp(count, 0, d.numel());
        if (count == 0) return zeros(0, dtype: ScalarType.Int64, device: w.device).MoveToOuterDisposeScope();
        // Selection rather than a sort: everything below the count-th smallest distance, then as many of the elements
        // at exactly that distance as fit, lowest indices first. nonzero() lists them in ascending order.
        var (kth, _) = d.kthvalue(count, 0);
        var below = d.lt(kth);
        var at = d.eq(kth);
        var room = count - below.sum();
        var chosen = below.logical_or_(at.logical_and(at.to(ScalarType.Int64).cumsum(0).le(room)));
        return chosen.nonzero().squeeze(1).MoveToOuterDisposeScope();
    }

    static Tensor Pow2(Tensor exponent)
    {
        var table = tensor(Pow2Table, device: exponent.device);
        return table.take(exponent.clamp(-127, 127).to(ScalarType.Int64) + 127);
    }

    /// <summary>§3.1: one E8M0 scale 2^s per 32 elements, s from the bits of the block's amax.</summary>
    static (Tensor, Tensor) Mx(Tensor x, ScaleRule rule)
    {
        long rows = x.size(0), cols = x.size(1);
        var blocks = x.reshape(rows, cols / 32, 32);
        var amax = blocks.abs().amax([2], keepdim: true);
        // amax = m·2^e with m ∈ [0.5, 1): floor(log2 amax) = e − 1 and the normalised significand is 2m.
        var (m, e) = amax.frexp();
        // OCP: s = floor(log2 amax) − 2; TetraJet: the smallest s with amax ≤ 6·2^s, one more when 2m > 1.5.
        var s = rule == ScaleRule.Ocp ? e - 3 : where(m.le(0.75f), e - 3, e - 2);
        s = s.clamp(E8M0.MinExponent, E8M0.MaxExponent);
        var scaled = blocks * Pow2(-s);                                           // exact, as MxGrid scales
        scaled = where(amax.isfinite(), scaled, float.NaN);
        return (scaled, Pow2(s).expand_as(blocks));
    }

    /// <summary>
    /// §3.2/§3.3: FP32 outer scale amax_o/2688 per 128 elements (<paramref name="outerBlock"/> 128) or per tensor (0),
    /// E4M3 inner scale per 16 elements or per 16×16 tile; the element scale is FP32(s_i·s_o).
    /// </summary>
    static (Tensor, Tensor) Nv(Tensor x, int outerBlock, bool tile)
    {
        long rows = x.size(0), cols = x.size(1);
        long groups = outerBlock > 0 ? cols / outerBlock : 1;
        // Blocks in the last dimension(s): [rows, outer groups, inner blocks, 16], or 16×16 tiles [rows/16, 16, cols/16, 16].
        var xs = tile ? x.reshape(rows / 16, 16, cols / 16, 16) : x.reshape(rows, groups, cols / groups / 16, 16);
        var inner = tile ? xs.abs().amax([1, 3], keepdim: true) : xs.abs().amax([3], keepdim: true);
        var outer = outerBlock > 0 ? inner.amax([2], keepdim: true) : inner.amax([0, 1, 2, 3], keepdim: true);
        // Divide by same-shaped tensors: on CUDA a scalar divisor becomes a multiplication by its reciprocal.
        var so = outer / full_like(outer, ScalarCore.NvOuterDivisor);
        var d = so * 6f;
        var si = where(d.eq(0f), 0f, E4M3Round(inner / d.expand_as(inner)));
        var scale = si * so;
        var scaled = where(scale.eq(0f), 0f, xs / scale.expand_as(xs));
        // A NaN or ±Inf anywhere in an outer block (or the tensor) makes it NaN throughout, as in the quantizer.
        scaled = where(outer.isfinite(), scaled, float.NaN);
        return (scaled.reshape(rows, cols), scale.expand_as(xs).reshape(rows, cols));
    }

    /// <summary>E4M3.Round for a ≥ 0 (or NaN): RNE to 3 fraction bits on [2^-6, 448), multiples of 2^-9 below, 448 above.</summary>
    static Tensor E4M3Round(Tensor a)
    {
        var (m, e) = a.frexp();                                        // a = m·2^e, m ∈ [0.5, 1)
        var normal = (m * 16f).round_() * Pow2(e - 4);                 // round(m·16) half to even, rescaled exactly
        var sub = (a * 512f).round_() * (1f / 512f);                  // exact power-of-two scalings
        return where(a.ge(0.015625f), normal, sub).clamp_max(E4M3.Max);
    }
}
