using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TetraJet.Formats;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Cpu;

/// <summary>MXFP4 / MXFP8 (block 32, E8M0 scale) kernels, specialised on format <typeparamref name="F"/> and rounding <typeparamref name="R"/>.</summary>
internal static unsafe class MxKernels<F, R> where F : struct, IMxFormatOps where R : struct, IRoundingOps
{
    const int Block = 32;

    /// <summary>Blocks along rows: rows [r0, r1), columns [c0, c1) (c0 a block multiple), four vectors per block.</summary>
    public static void Last(KernelArgs j, int r0, int r1, int c0, int c1)
    {
        int cols = j.Cols;
        float* u = stackalloc float[Block];
        bool vec = CpuQuantizer.Vectorised;
        for (int row = r0; row < r1; row++)
        {
            long start = (long)row * cols;
            int b = c0;
            if (vec)
                for (; b + Block <= c1; b += Block) Block32(j, start + b, u);
            for (; b < c1; b += Block) ScalarBlock(j, start + b, Math.Min(Block, c1 - b), 1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Block32(KernelArgs j, long i0, float* u)
    {
        float* x = j.X + i0, y = j.Y + i0;
        var x0 = Vector256.Load(x); var x1 = Vector256.Load(x + 8); var x2 = Vector256.Load(x + 16); var x3 = Vector256.Load(x + 24);
        int mb = VectorGrid.HorizontalMax(Vector256.Max(
            Vector256.Max(VectorGrid.AbsBits(x0), VectorGrid.AbsBits(x1)),
            Vector256.Max(VectorGrid.AbsBits(x2), VectorGrid.AbsBits(x3))));
        if (mb >= 0x7F800000) { KernelArgs.Fill(y, Block, float.NaN); return; }     // NaN/Inf in the block: all NaN
        if (mb == 0) { KernelArgs.Fill(y, Block, 0f); return; }
        int s = F.Exponent(Bits.AsFloat((uint)mb));
        var inv = Vector256.Create(Bits.Pow2(-s));
        var scale = Vector256.Create(Bits.Pow2(s));
        if (R.UsesRandom) PhiloxVector.Fill(j.Seed, j.Stream, i0, Block, u);
        float* e = j.E + i0;
        Element(x0, e, u, y, inv, scale);
        Element(x1, e + 8, u + 8, y + 8, inv, scale);
        Element(x2, e + 16, u + 16, y + 16, inv, scale);
        Element(x3, e + 24, u + 24, y + 24, inv, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Element(Vector256<float> x, float* e, float* u, float* y, Vector256<float> inv, Vector256<float> scale)
    {
        var ev = R.UsesEma ? Vector256.Load(e) * inv : default;
        var uv = R.UsesRandom ? Vector256.Load(u) : default;
        (F.Round<R>(x * inv, uv, ev) * scale).Store(y);
    }

    /// <summary>
    /// Blocks down columns: rows [r0, r1) (r0 a block multiple), columns [c0, c1). Tiles of 32 columns keep every load
    /// a contiguous row segment; each lane is a different column's block.
    /// </summary>
    public static void First(KernelArgs j, int r0, int r1, int c0, int c1)
    {
        bool vec = CpuQuantizer.Vectorised;
        // One block of rows at a time across all tiles, so the walk stays within a few pages instead of striding down whole columns.
        for (int b = r0; b < r1; b += Block)
        {
            int be = Math.Min(b + Block, r1);
            int c = c0;
            if (vec)
            {
                for (; c + 32 <= c1; c += 32) Tile(j, b, be, c, 4);
                for (; c + 8 <= c1; c += 8) Tile(j, b, be, c, 1);
            }
            for (; c < c1; c++) ScalarBlock(j, (long)b * j.Cols + c, be - b, j.Cols);
        }
    }

    static void Tile(KernelArgs j, int r0, int r1, int c, int groups)
    {
        int cols = j.Cols;
        float* u = stackalloc float[32];
        var inv = stackalloc Vector256<float>[4];
        var scale = stackalloc Vector256<float>[4];
        var zero = stackalloc Vector256<float>[4];
        var bad = stackalloc Vector256<float>[4];
        var nan = Vector256.Create(float.NaN);
        for (int b = r0; b < r1; b += Block)
        {
            int count = Math.Min(Block, r1 - b);
            for (int g = 0; g < groups; g++)
            {
                float* col = j.X + (long)b * cols + c + 8 * g;
                var m = Vector256<int>.Zero;
                for (int r = 0; r < count; r++) m = Vector256.Max(m, VectorGrid.AbsBits(Vector256.Load(col + (long)r * cols)));
                zero[g] = Vector256.Equals(m, Vector256<int>.Zero).AsSingle();
                bad[g] = Vector256.GreaterThanOrEqual(m, Vector256.Create(0x7F800000)).AsSingle();
                LaneScales(m, out inv[g], out scale[g]);
            }
            for (int r = 0; r < count; r++)
            {
                long i0 = (long)(b + r) * cols + c;
                if (R.UsesRandom) PhiloxVector.Fill(j.Seed, j.Stream, i0, 8 * groups, u);
                for (int g = 0; g < groups; g++)
                {
                    long i = i0 + 8 * g;
                    var ev = R.UsesEma ? Vector256.Load(j.E + i) * inv[g] : default;
                    var uv = R.UsesRandom ? Vector256.Load(u + 8 * g) : default;
                    var q = F.Round<R>(Vector256.Load(j.X + i) * inv[g], uv, ev) * scale[g];
                    q = Vector256.ConditionalSelect(zero[g], Vector256<float>.Zero, q);
                    Vector256.ConditionalSelect(bad[g], nan, q).Store(j.Y + i);
                }
            }
        }
    }

    /// <summary>2^−s and 2^s per lane from each lane's amax bits (exact scalar rule; zero and non-finite lanes get s = 0 and are masked later).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static void LaneScales(Vector256<int> amaxBits, out Vector256<float> inv, out Vector256<float> scale)
    {
        float* i8 = stackalloc float[8];
        float* s8 = stackalloc float[8];
        for (int k = 0; k < 8; k++)
        {
            int mb = amaxBits.GetElement(k);
            int s = mb == 0 || mb >= 0x7F800000 ? 0 : F.Exponent(Bits.AsFloat((uint)mb));
            i8[k] = Bits.Pow2(-s);
            s8[k] = Bits.Pow2(s);
        }
        inv = Vector256.Load(i8);
        scale = Vector256.Load(s8);
    }

    /// <summary>One block of <paramref name="count"/> elements at stride <paramref name="stride"/>: the reference's steps, for tails and the scalar fallback.</summary>
    public static void ScalarBlock(KernelArgs j, long i0, int count, int stride)
    {
        float amax = 0; bool bad = false;
        for (int k = 0; k < count; k++)
        {
            float v = j.X[i0 + (long)k * stride];
            if (Bits.IsNonFinite(v)) bad = true;
            else if (Bits.Abs(v) > amax) amax = Bits.Abs(v);
        }
        if (bad || amax == 0)
        {
            for (int k = 0; k < count; k++) j.Y[i0 + (long)k * stride] = bad ? float.NaN : 0f;
            return;
        }
        int s = F.Exponent(amax);
        float inv = Bits.Pow2(-s), scale = Bits.Pow2(s);
        for (int k = 0; k < count; k++)
        {
            long i = i0 + (long)k * stride;
            float u = R.UsesRandom ? Philox.Uniform(j.Seed, j.Stream, i) : 0f;
            float e = R.UsesEma ? j.E[i] * inv : 0f;
            j.Y[i] = F.Round<R>(j.X[i] * inv, u, e) * scale;
        }
    }
}
