namespace TetraJet.Models;

/// <summary>Which recipe each transformer block's linears use, and the shape checks the formats need.</summary>
public static class BlockRecipes
{
    /// <summary>
    /// Number of trailing blocks kept in BF16 (NVIDIA recipe: 15%). Rounded up so that at least the stated
    /// fraction stays in BF16: depth 4 → 1, 8 → 2, 12 → 2, 16 → 3.
    /// </summary>
    public static int Bf16TailBlocks(Recipe recipe, int depth) =>
        recipe.Bf16TailFraction <= 0 ? 0 : Math.Min(depth, (int)Math.Ceiling(recipe.Bf16TailFraction * depth - 1e-9));

    /// <summary>The recipe of block <paramref name="index"/> of <paramref name="depth"/>.</summary>
    public static Recipe ForBlock(Recipe recipe, int index, int depth) =>
        index >= depth - Bf16TailBlocks(recipe, depth) ? Recipe.Get(RecipeId.BF16) : recipe;

    /// <summary>Throws a message that names the layer when K or N is not a multiple of the recipe's block.</summary>
    public static void CheckFeatures(Recipe recipe, string layer, int inFeatures, int outFeatures)
    {
        if (!recipe.IsQuantized) return;
        int m = recipe.FeatureMultiple;
        if (inFeatures % m != 0 || outFeatures % m != 0)
            throw new ArgumentException(
                $"{layer}: {recipe.Name} needs in and out features that are multiples of {m}, got {inFeatures}→{outFeatures}; " +
                "choose another --size or recipe");
    }
}
