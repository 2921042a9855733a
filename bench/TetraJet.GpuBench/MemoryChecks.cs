using TetraJet;
using TetraJet.Quantization;
using TetraJet.Quantization.Gpu;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Saved-operand storage and memory lifetime on CUDA: the storing quantizer writes the CPU loop's and the reference's
/// bytes and unpacks to its own values; packed and plain QLinear give the same gradients; training steps do not grow
/// device memory.
/// </summary>
static class MemoryChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var c in Packing(device)) yield return c;
        foreach (var id in new[] { RecipeId.Microscaling, RecipeId.TetraJet, RecipeId.TetraJetV2 })
            foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
                yield return PackedGradients(id, dtype, device);
        foreach (var id in new[] { RecipeId.BF16, RecipeId.TetraJetV2 }) yield return NoGrowth(id, device);
    }

    static IEnumerable<(string, bool, string)> Packing(Device device)
    {
        var specs = new (string Name, QuantSpec Spec)[]
        {
            ("MXFP4 RTN", new(QuantFormat.MXFP4)), ("MXFP4/ocp RTN", new(QuantFormat.MXFP4, ScaleRule: ScaleRule.Ocp)),
            ("MXFP4 SR", new(QuantFormat.MXFP4, Rounding.Stochastic)), ("NVFP4 RTN", new(QuantFormat.NVFP4)),
            ("MXFP8 RTN", new(QuantFormat.MXFP8)),
        };
        foreach (var (name, spec) in specs)
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var scope = NewDisposeScope();
                manual_seed(21);
                // Rows at very different magnitudes, a zero row, a NaN and an Inf: every scale path.
                var x = randn(64, 1024).mul(pow(10, arange(-20, 44).unsqueeze(1).to(ScalarType.Float32).div(2)));
                x[3] = zeros(1024);
                x[5, 7] = tensor(float.NaN);
                x[9, 300] = tensor(float.PositiveInfinity);
                x = x.to(dtype);
                var xg = x.to(device);
                var (qCpu, sCpu) = Quantizer.QuantizeStored(x, spec, 4, 5);
                var (qGpu, sGpu) = Quantizer.QuantizeStored(xg, spec, 4, 5);
                using var reference = Quantizer.QuantizePacked(x, spec, BlockAxis.Last, 4, 5);
                long Bytes(PackedTensor a, PackedTensor b) => a.Codes.flatten().ne(b.Codes.flatten().cpu()).sum().item<long>()
                    + a.Scales.flatten().ne(b.Scales.flatten().cpu()).sum().item<long>() + LinearChecks.Mismatch(a.OuterScales.flatten(), b.OuterScales.flatten());
                long cpuDiff = Bytes(sCpu, sGpu), refDiff = Bytes(reference, sGpu);
                long valueDiff = LinearChecks.Mismatch(qGpu, sGpu.Dequantize()) + LinearChecks.Mismatch(qGpu, qCpu);
                bool ok = cpuDiff == 0 && refDiff == 0 && valueDiff == 0;
                yield return ($"quantize + store {name} {dtype} on CUDA", ok,
                    $"storage bytes differing from the CPU loop: {cpuDiff}, from the reference: {refDiff}; values differing (unpacked vs quantized, CUDA vs CPU): {valueDiff} of {2 * x.numel()}");
            }
    }

    /// <summary>
    /// Packed X̂/Ŵ (one-pass re-quantizers from storage in backward) against plain ones (unpacked tensors, the
    /// ordinary kernels): same output and gradients. 1196 tokens: the RHT's padding of T is exercised.
    /// </summary>
    static (string, bool, string) PackedGradients(RecipeId id, ScalarType dtype, Device device)
    {
        Recipe recipe = id;
        Tensor[] Run(bool pack)
        {
            manual_seed(8);
            var layer = new QLinear(1024, 512, recipe, name: "packcheck") { Seed = 3, PackSavedOperands = pack };
            layer.to(device, dtype);
            var x = randn(4, 299, 1024).to(dtype, device).requires_grad_();
            var y = layer.call(x);
            y.backward([randn(4, 299, 512).to(dtype, device)]);
            return [y.detach(), x.grad!, layer.weight.grad!, layer.bias!.grad!];
        }
        var plain = Run(false);
        var packed = Run(true);
        long bad = plain.Zip(packed).Sum(p => LinearChecks.Mismatch(p.First, p.Second));
        return ($"QLinear {recipe.Name} packed X̂/Ŵ == plain on CUDA ({dtype} y, dX, dW, db)", bad == 0, $"{bad} elements differ");
    }

    /// <summary>Steps of a small stack, each in its own dispose scope as the trainer runs them: device memory must stand still.</summary>
    static (string, bool, string) NoGrowth(RecipeId id, Device device)
    {
        Recipe recipe = id;
        var gpu = CudaRunner.ForDevice(0);
        var layers = Enumerable.Range(0, 4).Select(i => new QLinear(1024, 1024, recipe, name: $"grow{i}")).ToList();
        foreach (var l in layers) l.to(device, ScalarType.BFloat16);
        var used = new List<long>();
        for (int step = 0; step < 40; step++)
        {
            using (var scope = NewDisposeScope())
            {
                var h = randn(8, 512, 1024).to(ScalarType.BFloat16, device);
                foreach (var l in layers) h = l.call(h);
                h.square().mean().backward();
                foreach (var l in layers) l.weight.grad?.zero_();
            }
            gpu.Synchronize();
            used.Add(gpu.MemoryInUse());
        }
        double growthMiB = (used[^1] - used[4]) / 1048576.0;
        bool ok = growthMiB <= 2;
        return ($"QLinear {recipe.Name} 40 training steps on CUDA: device memory flat", ok,
            $"in use after step 5 {used[4] / 1048576.0:F0} MiB, after step 40 {used[^1] / 1048576.0:F0} MiB (growth {growthMiB:F1} MiB)");
    }
}
