using TetraJet;
using TetraJet.IO;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The inference export of a model that lives on CUDA: the file, read back by <see cref="InferenceExport.LoadDequantized"/>,
/// must hold exactly the Q2(W) that the layer's CUDA forward multiplies by (the GPU kernels), for every recipe,
/// Q-EMA, and BF16 weights.
/// </summary>
static class ExportChecks
{
    public static IEnumerable<(string Name, bool Pass, string Detail)> Run(Device device)
    {
        foreach (var id in Enum.GetValues<RecipeId>()) yield return Check(id.ToString(), id, device, ScalarType.Float32);
        yield return Check("TetraJet + Q-EMA", Recipe.Get(RecipeId.TetraJet) with { QEma = true }, device, ScalarType.Float32);
        yield return Check("TetraJet-v2, bf16 weights", RecipeId.TetraJetV2, device, ScalarType.BFloat16);
        yield return Check("TetraJet, bf16 weights", RecipeId.TetraJet, device, ScalarType.BFloat16);
    }

    static (string, bool, string) Check(string label, Recipe recipe, Device device, ScalarType dtype)
    {
        const int K = 512, N = 384;
        manual_seed(21);
        var layer = new QLinear(K, N, recipe, name: "fc");
        using (no_grad())
        {
            layer.weight.mul_(randn_like(layer.weight).exp());   // heavy tails: many scale exponents
            layer.weight[3, ..32].zero_();
        }
        var model = nn.Sequential(("fc", layer));
        model.to(device, dtype);
        if (recipe.QEma)
            for (int s = 1; s <= 12; s++)
            {
                using (no_grad()) layer.weight.add_(randn_like(layer.weight).mul(0.01f));
                model.UpdateQuantizationState(s, 100);
            }
        var path = Path.Combine(Path.GetTempPath(), $"gpubench-export-{Environment.ProcessId}.safetensors");
        try
        {
            InferenceExport.Save(model, path);
            var fromFile = InferenceExport.LoadDequantized(path)["fc.weight"].to(ScalarType.Float32);
            // Q2(W) as the plan hands it to the forward GEMM, caught by the probe in an evaluation forward (no state moves).
            Tensor? caught = null;
            layer.eval();
            layer.OperandProbe = (slot, q) => { if (slot == 2) caught = q.detach().cpu().to(ScalarType.Float32).DetachFromDisposeScope(); };
            using (no_grad()) layer.call(randn(8, K).to(dtype, device)).Dispose();
            layer.OperandProbe = null;
            var forward = caught ?? throw new InvalidOperationException("the forward did not show Q2(W)");
            // An unquantized weight is written in BF16 (docs/EXPORT.md): the file holds the forward's W rounded to BF16.
            if (!recipe.Q2.IsQuantized) forward = forward.to(ScalarType.BFloat16).to(ScalarType.Float32);
            var same = fromFile.eq(forward).logical_or(fromFile.isnan().logical_and(forward.isnan()));
            long bad = same.logical_not().sum().item<long>();
            return ($"Export {label}: Q2(W) in the file == the CUDA forward's", bad == 0,
                bad == 0 ? $"{forward.numel()} weights identical" : $"{bad} of {forward.numel()} differ");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
