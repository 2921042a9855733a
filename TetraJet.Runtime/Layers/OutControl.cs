using TetraJet.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet;

/// <summary>
/// The input channels OutControl fixed for a layer (int64 indices into K, on the layer's device): the outlier channels
/// and the FP4 channels, each in descending order of their norm sums, which is also the order each part is gathered in.
/// </summary>
public sealed class OutControlChannels(Tensor outliers, Tensor fp4)
{
    /// <summary>The k outlier channels, largest sum first: the MXFP8 part.</summary>
    public Tensor Outliers { get; } = outliers;

    /// <summary>The other K − k channels, largest sum first: the FP4 part.</summary>
    public Tensor Fp4 { get; } = fp4;
}

/// <summary>
/// OutControl (ALGORITHMS.md §5, TetraJet-v2) as functions on tensors, so that every path (generated plans, the
/// unspecialised plan, checks) computes the same thing. The channels with the largest Σ over 50 training
/// passes of ‖X[:, j]‖₂ are the outliers; each part is gathered, largest sum first, into a contiguous matrix whose
/// blocks follow that order.
/// <list type="bullet">
/// <item>Forward: Y = Q1(X_fp4)·Q2(W_fp4)ᵀ + MXFP8(X_out)·MXFP8(W_out)ᵀ, MXFP8 with RTN along K.</item>
/// <item>Dgrad: Q4 as usual over the full Ŵ, whose columns hold Q2(W_fp4) and MXFP8(W_out) where they came from.</item>
/// <item>Wgrad: dW[:, fp4] = Q5(dY)ᵀ·Q6(X̂_fp4) as usual; dW[:, out] = MXFP8(dY)ᵀ·MXFP8(X̂_out), RTN, blocks along T,
/// no RHT.</item>
/// </list>
/// </summary>
public static class OutControl
{
    /// <summary>Both parts keep whole 128-channel blocks (an NVFP4 outer block), as the authors' kernels need.</summary>
    public const int ChannelBlock = 128;

    /// <summary>The outlier part's quantizer, forward and wgrad: MXFP8 with RTN (§3.4).</summary>
    public static readonly QuantSpec OutlierSpec = new(QuantFormat.MXFP8);

    /// <summary>Where run-time notices go (a layer that keeps plain FP4); standard error unless set.</summary>
    public static Action<string> Notice { get; set; } = message => Console.Error.WriteLine(message);

    /// <summary>
    /// Outlier channels of a layer with <paramref name="k"/> input channels: min(⌊K/128⌋·128, ⌈⌊f·K⌋/128⌉·128).
    /// 0, or a count that leaves fewer than 128 FP4 channels, means the layer keeps plain FP4 (<see cref="KeepsPlainFp4"/>).
    /// </summary>
    public static int OutlierChannelCount(int k, double fraction)
    {
        if (k <= 0 || !(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), $"OutControl needs K > 0 and a fraction in (0, 1], got K = {k}, fraction = {fraction}");
        // ⌊f·K⌋ in decimal, so that a fraction such as 0.3 times 10 is 3 and not the 2.9999999999999996 a double gives.
        long top = (long)decimal.Floor((decimal)fraction * k);
        long rounded = (top + ChannelBlock - 1) / ChannelBlock * ChannelBlock;
        return (int)Math.Min((long)k / ChannelBlock * ChannelBlock, rounded);
    }

    /// <summary>Whether a layer keeps plain FP4 under OutControl: no outlier channels, or fewer than 128 FP4 channels beside them.</summary>
    public static bool KeepsPlainFp4(int k, double fraction)
    {
        int outliers = OutlierChannelCount(k, fraction);
        return outliers == 0 || k - outliers < ChannelBlock;
    }

    /// <summary>‖X[:, j]‖₂ of one pass over X [T, K], per channel (float64, not squared).</summary>
    public static Tensor PassNorms(Tensor x2)
    {
        using var scope = NewDisposeScope();
        return x2.detach().to(ScalarType.Float64).square().sum(dim: 0).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The <paramref name="count"/> channels with the largest <paramref name="sums"/> and the rest, each largest first;
    /// equal sums go to the lower index (a stable descending sort), so every device picks the same channels.
    /// </summary>
    public static OutControlChannels SelectChannels(Tensor sums, int count)
    {
        if (sums.dim() != 1 || count < 0 || count > sums.size(0)) throw new ArgumentException($"cannot choose {count} of {string.Join("x", sums.shape)} channel sums");
        using var scope = NewDisposeScope();
        var order = sums.sort(dim: 0, descending: true, stable: true).Indices;
        return new(order.narrow(0, 0, count).clone().MoveToOuterDisposeScope(), order.narrow(0, count, sums.size(0) - count).clone().MoveToOuterDisposeScope());
    }

    /// <summary>The columns <paramref name="channels"/> of a [rows, K] tensor, in that order, as a contiguous [rows, n] tensor.</summary>
    public static Tensor Gather(Tensor t, Tensor channels) => t.index_select(1, channels.to(t.device));

    /// <summary>A [rows, K] tensor with the FP4 part's columns back in <see cref="OutControlChannels.Fp4"/> and the outlier part's in <see cref="OutControlChannels.Outliers"/>.</summary>
    public static Tensor Mix(Tensor fp4Part, Tensor outlierPart, OutControlChannels channels)
    {
        if (fp4Part.size(0) != outlierPart.size(0) || fp4Part.dtype != outlierPart.dtype)
            throw new ArgumentException($"the two parts differ: [{string.Join(", ", fp4Part.shape)}] {fp4Part.dtype} and [{string.Join(", ", outlierPart.shape)}] {outlierPart.dtype}");
        var device = fp4Part.device;
        var mixed = empty(new[] { fp4Part.size(0), fp4Part.size(1) + outlierPart.size(1) }, fp4Part.dtype, device);
        mixed.index_copy_(1, channels.Fp4.to(device), fp4Part);
        mixed.index_copy_(1, channels.Outliers.to(device), outlierPart);
        return mixed;
    }

    /// <summary>
    /// Y = X̂_fp4·Ŵ_fp4ᵀ + X̂_out·Ŵ_outᵀ (+ b) from the mixed forward operands (their columns hold each part where it came
    /// from): two GEMMs, one per part, as the authors' FP4 and FP8 kernels run them.
    /// </summary>
    public static Tensor Product(Tensor xq, Tensor wq, Tensor? bias, OutControlChannels channels)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(Gather(xq, channels.Fp4), Gather(wq, channels.Fp4));
        y.add_(nn.functional.linear(Gather(xq, channels.Outliers), Gather(wq, channels.Outliers)));
        if (bias is not null) y.add_(bias);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The outlier wgrad's operands: MXFP8(dY) and MXFP8(X̂_out) with RTN along T (zero-padded to the block of 32, which
    /// changes no product), no RHT.
    /// </summary>
    public static (Tensor Dy, Tensor X) QuantizeOutlierWgradOperands(Tensor dy, Tensor xOutliers) =>
        (Quantizer.Quantize(dy, OutlierSpec, BlockAxis.First, padBlockAxis: true),
         Quantizer.Quantize(xOutliers, OutlierSpec, BlockAxis.First, padBlockAxis: true));
}
