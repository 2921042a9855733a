using TetraJet.Formats;
using TetraJet.Oscillation;
using TetraJet.Quantization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests.Oscillation;

/// <summary>
/// Lean OsciReset (ALGORITHMS.md §5): on the full variant's schedule it tracks only the elements nearest an E2M1
/// rounding midpoint, chosen at the snapshot, resets them as the full variant does, and keeps a fraction of its state.
/// </summary>
public class LeanOsciResetTests(ITestOutputHelper output)
{
    // A short schedule: from step 0, period 10, window 4: step 10 snapshots (and chooses), 11–14 measure, 15 resets.
    static Recipe Schedule(Recipe r) => r with { OsciReset = true, OsciResetStart = 0, OsciResetPeriod = 10, OsciResetWindow = 4 };

    static Recipe Lean(Recipe r, double fraction) => Schedule(r) with { OsciResetLean = true, OsciResetLeanFraction = fraction };

    public static TheoryData<string> Q2Specs => ["TetraJet", "Microscaling", "TetraJetV2", "NvidiaNvfp4"];

    static QuantSpec Q2Of(string recipe) => Recipe.Parse(recipe).Q2.Spec;

    [Theory]
    [MemberData(nameof(Q2Specs))]
    public void Scales_are_those_of_the_forward_weight_quantizer(string recipe)
    {
        var spec = Q2Of(recipe);
        manual_seed(11);
        // Rows of very different magnitudes, a zero row, and exact grid midpoints.
        var w = randn(64, 256) * exp2(randint(-12, 4, [64, 1]).to(ScalarType.Float32));
        w[3] = zeros(256);
        w[7, ..32] = tensor(new[] { 4f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f }).repeat(4);
        var (scaled, scale) = RoundingMidpoints.Scale(w, spec);
        var v = scaled.data<float>().ToArray();
        var s = scale.data<float>().ToArray();
        var expected = Quantizer.Quantize(w, spec).data<float>().ToArray();
        for (int i = 0; i < v.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(E2M1.RoundNearest(v[i]) * s[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                $"{recipe} element {i}: RTN({v[i]})·{s[i]} = {E2M1.RoundNearest(v[i]) * s[i]}, quantizer {expected[i]}");
    }

    /// <summary>A 32×32 MXFP4 weight with scale 1 in every row but row 20 (scale 2), five elements near a midpoint.</summary>
    static Tensor HandMadeWeight()
    {
        var w = ones(32, 32);
        w[.., 0] = tensor(4f);                    // amax 4: TetraJet scale 2^0
        w[20] = full(32, 2f); w[20, 0] = tensor(8f);   // row 20: scale 2^1, every other element 2 (scaled 1)
        w[3, 5] = tensor(1.26f);                  // scaled distance 0.01 (midpoint 1.25)
        w[20, 3] = tensor(2.53f);                 // scaled 1.265: 0.015
        w[7, 9] = tensor(-2.52f);                 // 0.02 (midpoint 2.5, negative side)
        w[10, 11] = tensor(0.78f);                // 0.03
        w[12, 30] = tensor(3.46f);                // 0.04
        w[25, 2] = tensor(5.05f);                 // 0.05: the sixth nearest, left out of five
        return w;
    }

    static readonly long[] NearestFive = [3 * 32 + 5, 7 * 32 + 9, 10 * 32 + 11, 12 * 32 + 30, 20 * 32 + 3];

    [Fact]
    public void Selection_picks_exactly_the_elements_nearest_a_midpoint()
    {
        var w = HandMadeWeight();
        var spec = Q2Of("TetraJet");
        Assert.Equal(NearestFive, RoundingMidpoints.Nearest(w, spec, 5).data<long>().ToArray());
        Assert.Equal(0.01f, RoundingMidpoints.Distance(w, spec)[3, 5].item<float>(), 5);
        // Ties (every 1.0 lies 0.25 from 0.75 and 1.25) go to the lowest indices; column 0 (4: 0.5 from 3.5) comes last.
        Assert.Equal(new long[] { 1, 2, 3 }, RoundingMidpoints.Nearest(ones(32, 32).index_fill_(1, tensor(new long[] { 0 }), 4f), spec, 3).data<long>().ToArray());

        // Through the layer: the snapshot step chooses ⌈(5/1024)·1024⌉ = 5 elements, and no other step does.
        var layer = new QLinear(32, 32, Lean(Recipe.TetraJet, 5.0 / 1024), bias: false);
        using (no_grad()) layer.weight.copy_(w);
        for (int step = 1; step < 10; step++) layer.UpdateQuantizationState(step, 100);
        Assert.Equal(new long[5], layer.OsciResetIndex!.to(ScalarType.Int64).data<long>().ToArray());
        layer.UpdateQuantizationState(10, 100);
        Assert.Equal(ScalarType.Int32, layer.OsciResetIndex!.dtype);
        Assert.Equal(NearestFive, layer.OsciResetIndex.to(ScalarType.Int64).data<long>().ToArray());
    }

    /// <summary>TetraJet-v2, 128×128: every row's first 16-block has scale ≈ 1; element [5, 7] flips between 1 and 1.5.</summary>
    static QLinear OscillatingLayer(Recipe recipe)
    {
        var layer = new QLinear(128, 128, recipe, bias: false);
        using (no_grad())
        {
            layer.weight.fill_(1f);
            layer.weight[.., 0] = tensor(6f);
        }
        return layer;
    }

    static void Steps(QLinear layer, int from, int to)
    {
        for (int step = from; step <= to; step++)
        {
            using (no_grad()) layer.weight[5, 7] = tensor(step % 2 == 0 ? 1.26f : 1.24f);   // across the midpoint 1.25
            layer.UpdateQuantizationState(step, 100);
        }
    }

    static bool SameBits(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Lean_osci_reset_resets_an_oscillating_element_like_the_full_variant()
    {
        Recipe v2 = Recipe.TetraJetV2;
        var full = OscillatingLayer(Schedule(v2) with { OsciResetThreshold = 8 });
        var lean = OscillatingLayer(Lean(v2, 0.01) with { OsciResetThreshold = 8 });
        var before = full.weight.detach().clone();
        Steps(full, 1, 14); Steps(lean, 1, 14);
        Assert.Equal(164, lean.OsciResetIndex!.numel());               // ⌈0.01·16384⌉
        Assert.Contains(5L * 128 + 7, lean.OsciResetIndex.to(ScalarType.Int64).data<long>().ToArray());   // the flipping element is tracked
        Steps(full, 15, 15); Steps(lean, 15, 15);                 // W + 1 after the snapshot: R = 2 / 0.08 = 25 ≥ 8

        float quantized = Quantizer.Quantize(full.weight.detach(), v2.Q2.Spec)[5, 7].item<float>();
        Assert.Equal(quantized, full.weight[5, 7].item<float>());    // reset onto the grid (≈ 1), away from 1.24
        Assert.NotEqual(1.24f, quantized);
        Assert.True(SameBits(full.weight.detach(), lean.weight.detach()));
        var others = ones(128, 128, dtype: ScalarType.Bool); others[5, 7] = tensor(false);
        Assert.True(full.weight.detach().masked_select(others).eq(before.masked_select(others)).all().item<bool>());
    }

    static long OsciResetStateBytes(QLinear layer) => layer.state_dict()
        .Where(p => p.Key.StartsWith("oscireset_", StringComparison.Ordinal))
        .Sum(p => p.Value.numel() * p.Value.element_size());

    [Theory]
    [InlineData(256, 1024)]
    [InlineData(4096, 4096)]
    public void Lean_state_is_at_most_a_fifth_of_the_full_state(int n, int k)
    {
        Recipe v2 = Recipe.TetraJetV2;
        long numel = (long)n * k, full, lean;
        using (var layer = new QLinear(k, n, Schedule(v2), bias: false)) full = OsciResetStateBytes(layer);
        using (var layer = new QLinear(k, n, Lean(v2, 0.1), bias: false)) lean = OsciResetStateBytes(layer);
        output.WriteLine($"OsciReset state of a {n}×{k} layer: full {full} bytes, lean {lean} bytes ({100.0 * lean / full:F2}%)");
        Assert.Equal(4 * 4 * numel + 8, full);                                              // four float32 accumulators over W, an int64 flag
        Assert.Equal(QLinear.OsciResetLeanCount(numel, 0.1) * (4 * 4 + 4) + 8, lean);        // four floats and an int32 index each
        Assert.True(lean <= 0.2 * full, $"lean {lean} bytes, full {full} bytes");
    }

    [Fact]
    public void Lean_buffers_round_trip_through_a_checkpoint_and_the_run_continues_bit_exactly()
    {
        var recipe = Lean(Recipe.TetraJetV2, 0.01) with { OsciResetThreshold = 8 };
        var layer = OscillatingLayer(recipe);
        Steps(layer, 1, 12);                                       // stop in the middle of the window
        var keys = layer.state_dict().Keys.ToHashSet();
        foreach (var k in new[] { "oscireset_index", "oscireset_dfp", "oscireset_dq", "oscireset_prev_w", "oscireset_prev_q", "oscireset_fp4_part" }) Assert.Contains(k, keys);
        Assert.True(layer.state_dict()["oscireset_dq"].sum().item<float>() > 0);

        var path = Path.Combine(Path.GetTempPath(), $"tetrajet-lean-{Guid.NewGuid():N}.bin");
        try
        {
            layer.save(path);
            var resumed = new QLinear(128, 128, recipe, bias: false);   // other random weights and empty state until loaded
            resumed.load(path);
            foreach (var (name, t) in layer.state_dict()) Assert.True(SameBits(t, resumed.state_dict()[name]), name);
            Steps(layer, 13, 26); Steps(resumed, 13, 26);          // through the reset at 15 and the next window's choice at 20
            foreach (var (name, t) in layer.state_dict()) Assert.True(SameBits(t, resumed.state_dict()[name]), name);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Recipe_describes_the_lean_variant_and_rejects_a_fraction_outside_0_1()
    {
        Recipe v2 = Recipe.TetraJetV2;
        Assert.Contains("OsciReset (τ = 8, lean: 10% of W nearest a midpoint)", (v2 with { OsciReset = true, OsciResetLean = true }).Describe());
        Assert.Contains("OsciReset (τ = 8)", (v2 with { OsciReset = true }).Describe());
        Assert.Throws<ArgumentException>(() => new QLinear(128, 128, Lean(v2, 0)));
        Assert.Throws<ArgumentException>(() => new QLinear(128, 128, Lean(v2, 1.5)));
        Assert.Equal(100, QLinear.OsciResetLeanCount(1000, 0.1));   // not 101 from 0.1·1000 in double
        Assert.Equal(1, QLinear.OsciResetLeanCount(4, 0.1));
        Assert.Equal(26215, QLinear.OsciResetLeanCount(256 * 1024, 0.1));   // ⌈26214.4⌉
    }
}
