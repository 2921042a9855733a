namespace TetraJet.Cli;

/// <summary>
/// <c>--slot Qn=FORMAT</c>: per-slot overrides of the recipe (<see cref="Recipe.WithSlot"/>), as the TetraJet paper's
/// quantizer-by-quantizer ablation needs: e.g. <c>--recipe tetrajet --slot Q1=bf16 --slot Q3=bf16 …</c> leaves only
/// the slots not named quantized.
/// </summary>
public static class SlotOverrides
{
    public static Recipe Apply(Recipe recipe, IReadOnlyList<string> overrides)
    {
        var seen = new HashSet<Slot>();
        foreach (var text in overrides)
        {
            var parts = text.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !TryParseSlot(parts[0], out var slot))
                throw new UsageException($"--slot {text}: write Qn=FORMAT with n from 1 to 6, e.g. --slot Q2=bf16");
            var format = parts[1].ToLowerInvariant() switch
            {
                "bf16" => Format.BF16,
                "mxfp4" => Format.MXFP4,
                "nvfp4" => Format.NVFP4,
                "nvfp4-tensor" => Format.NVFP4PerTensor,
                "mxfp8" => Format.MXFP8,
                _ => throw new UsageException($"--slot {text}: unknown format '{parts[1]}'; use bf16, mxfp4, nvfp4, nvfp4-tensor or mxfp8"),
            };
            if (!seen.Add(slot)) throw new UsageException($"--slot: {slot} is given twice");
            try { recipe = recipe.WithSlot(slot, format); }
            catch (ArgumentException e) { throw new UsageException($"--slot {text}: {e.Message}"); }
        }
        return recipe;
    }

    static bool TryParseSlot(string text, out Slot slot)
    {
        slot = default;
        if (text.Length != 2 || char.ToUpperInvariant(text[0]) != 'Q' || text[1] is < '1' or > '6') return false;
        slot = (Slot)(text[1] - '0');
        return true;
    }
}
