using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TetraJet.Formats;
using TetraJet.Randomness;

namespace TetraJet.Quantization.Cpu;

/// <summary>
/// NVFP4 kernels (inner 16 with E4M3 scale; outer 128 FP32 scale, or one per tensor), specialised on rounding
/// <typeparamref name="R"/>. <c>perTensor</c> only chooses where s_o comes from, once per outer block.
/// </summary>
internal static unsafe class NvKernels<R> where R : struct, IRoundingOps
{
    const int Inner = 16, Outer = 128;

    /// <summary>Largest |x| bit pattern over <paramref name="count"/> contiguous elements (≥ 0x7F800000: NaN/Inf present).</summary>
    public static int MaxBits(float* x, long count)
    {
        long k = 0;
        int mb = 0;
        if (CpuQuantizer.Vectorised && count >= 8)
        {
            var m = Vector256<int>.Zero;
            for (; k + 8 <= count; k += 8) m = Vector256.Max(m, VectorGrid.AbsBits(Vector256.Load(x + k)));
            mb = VectorGrid.HorizontalMax(m);
        }
        for (; k < count; k++) mb = Math.Max(mb, (int)(Bits.AsUInt(x[k]) & 0x7FFFFFFFu));
        return mb;
    }

    /// <summary>Blocks along rows: rows [r0, r1), columns [c0, c1) (c0 a multiple of 128).</summary>
    public static void Last(KernelArgs j, int r0, int r1, int c0, int c1, bool perTensor)
    {
        int cols = j.Cols;
        float* u = stackalloc float[Outer];
        for (int row = r0; row < r1; row++)
            for (int ob = c0; ob < c1; ob += Outer)
            {
                int count = Math.Min(Outer, c1 - ob);
                long i0 = (long)row * cols + ob;
                float so = j.TensorOuter;
                if (!perTensor)
                {
                    int mb = MaxBits(j.X + i0, count);
                    if (mb >= 0x7F800000) { KernelArgs.Fill(j.Y + i0, count, float.NaN); continue; }
                    so = ScalarCore.NvOuterScale(Bits.AsFloat((uint)mb));
                }
                if (R.UsesRandom && CpuQuantizer.Vectorised) PhiloxVector.Fill(j.Seed, j.Stream, i0, count, u);
                if (count == Outer && CpuQuantizer.Vectorised) { Outer128(j, i0, so, u); continue; }
                for (int b = 0; b < count; b += Inner) InnerLast(j, i0 + b, Math.Min(Inner, count - b), so, u + b);
            }
    }

    /// <summary>A full outer block along a row: the 8 inner scales s_i = E4M3(amax_i / d) computed as one vector.</summary>
    static void Outer128(KernelArgs j, long i0, float so, float* u)
    {
        float* amax = stackalloc float[8];
        float* scales = stackalloc float[8];
        float* x = j.X + i0;
        for (int b = 0; b < 8; b++)
            amax[b] = Bits.AsFloat((uint)VectorGrid.HorizontalMax(Vector256.Max(
                VectorGrid.AbsBits(Vector256.Load(x + 16 * b)), VectorGrid.AbsBits(Vector256.Load(x + 16 * b + 8)))));
        var d = Vector256.Create(so * 6f);
        var si = VectorGrid.Fp8Nearest(Vector256.Load(amax) / d);
        si = Vector256.ConditionalSelect(Vector256.Equals(d, Vector256<float>.Zero), Vector256<float>.Zero, si);
        (si * Vector256.Create(so)).Store(scales);
        for (int b = 0; b < 8; b++)
        {
            long i = i0 + 16 * b;
            float scale = scales[b];
            if (scale == 0f) { KernelArgs.Fill(j.Y + i, Inner, 0f); continue; }
            var sc = Vector256.Create(scale);
            for (int h = 0; h < Inner; h += 8)
            {
                var ev = R.UsesEma ? Vector256.Load(j.E + i + h) / sc : default;
                var uv = R.UsesRandom ? Vector256.Load(u + 16 * b + h) : default;
                (R.Fp4(Vector256.Load(j.X + i + h) / sc, uv, ev) * sc).Store(j.Y + i + h);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void InnerLast(KernelArgs j, long i0, int count, float so, float* u)
    {
        float amax = Bits.AsFloat((uint)MaxBits(j.X + i0, count));
        float si = so == 0f ? 0f : ScalarCore.NvInnerScale(amax, so);
        float scale = si * so;
        if (scale == 0f) { KernelArgs.Fill(j.Y + i0, count, 0f); return; }       // NvGrid gives 0, and 0·0 = +0
        if (count < Inner || !CpuQuantizer.Vectorised) { ScalarInner(j, i0, count, 1, scale); return; }
        var sc = Vector256.Create(scale);
        for (int h = 0; h < Inner; h += 8)
        {
            var ev = R.UsesEma ? Vector256.Load(j.E + i0 + h) / sc : default;
            var uv = R.UsesRandom ? Vector256.Load(u + h) : default;
            (R.Fp4(Vector256.Load(j.X + i0 + h) / sc, uv, ev) * sc).Store(j.Y + i0 + h);
        }
    }

    static void ScalarInner(KernelArgs j, long i0, int count, int stride, float scale)
    {
        for (int k = 0; k < count; k++)
        {
            long i = i0 + (long)k * stride;
            float u = R.UsesRandom ? Philox.Uniform(j.Seed, j.Stream, i) : 0f;
            float e = R.UsesEma ? j.E[i] / scale : 0f;
            j.Y[i] = R.Fp4(j.X[i] / scale, u, e) * scale;
        }
    }

    /// <summary>Blocks down columns: rows [r0, r1) (r0 a multiple of 128), columns [c0, c1), in tiles of 32 or 8 columns.</summary>
    public static void First(KernelArgs j, int r0, int r1, int c0, int c1, bool perTensor)
    {
        bool vec = CpuQuantizer.Vectorised;
        // One outer block of rows at a time across all tiles, so the walk stays within a few pages.
        for (int ob = r0; ob < r1; ob += Outer)
        {
            int oe = Math.Min(ob + Outer, r1);
            int c = c0;
            if (vec)
            {
                for (; c + 32 <= c1; c += 32) Tile(j, ob, oe, c, 4, perTensor);
                for (; c + 8 <= c1; c += 8) Tile(j, ob, oe, c, 1, perTensor);
            }
            for (; c < c1; c++) ScalarColumn(j, ob, oe, c, perTensor);
        }
    }

    static void Tile(KernelArgs j, int r0, int r1, int c, int groups, bool perTensor)
    {
        int cols = j.Cols;
        float* u = stackalloc float[32];
        var so = stackalloc Vector256<float>[4];
        var bad = stackalloc Vector256<float>[4];
        var scale = stackalloc Vector256<float>[4];
        var zero = stackalloc Vector256<float>[4];
        var nan = Vector256.Create(float.NaN);
        for (int ob = r0; ob < r1; ob += Outer)
        {
            int count = Math.Min(Outer, r1 - ob);
            for (int g = 0; g < groups; g++)
            {
                if (perTensor) { so[g] = Vector256.Create(j.TensorOuter); bad[g] = default; continue; }
                var m = ColumnMax(j.X + (long)ob * cols + c + 8 * g, count, cols);
                bad[g] = Vector256.GreaterThanOrEqual(m, Vector256.Create(0x7F800000)).AsSingle();
                so[g] = m.AsSingle() / Vector256.Create(ScalarCore.NvOuterDivisor);
            }
            for (int ib = ob; ib < ob + count; ib += Inner)
            {
                int ic = Math.Min(Inner, ob + count - ib);
                for (int g = 0; g < groups; g++)
                {
                    var amax = ColumnMax(j.X + (long)ib * cols + c + 8 * g, ic, cols).AsSingle();
                    var d = so[g] * Vector256.Create(6f);
                    var si = VectorGrid.Fp8Nearest(amax / d);
                    si = Vector256.ConditionalSelect(Vector256.Equals(d, Vector256<float>.Zero), Vector256<float>.Zero, si);
                    scale[g] = si * so[g];
                    zero[g] = Vector256.Equals(scale[g], Vector256<float>.Zero);
                }
                for (int r = 0; r < ic; r++)
                {
                    long i0 = (long)(ib + r) * cols + c;
                    if (R.UsesRandom) PhiloxVector.Fill(j.Seed, j.Stream, i0, 8 * groups, u);
                    for (int g = 0; g < groups; g++)
                    {
                        long i = i0 + 8 * g;
                        var ev = R.UsesEma ? Vector256.Load(j.E + i) / scale[g] : default;
                        var uv = R.UsesRandom ? Vector256.Load(u + 8 * g) : default;
                        var q = R.Fp4(Vector256.Load(j.X + i) / scale[g], uv, ev) * scale[g];
                        q = Vector256.ConditionalSelect(zero[g], Vector256<float>.Zero, q);
                        Vector256.ConditionalSelect(bad[g], nan, q).Store(j.Y + i);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ColumnMax(float* p, int count, int cols)
    {
        var m = Vector256<int>.Zero;
        for (int r = 0; r < count; r++) m = Vector256.Max(m, VectorGrid.AbsBits(Vector256.Load(p + (long)r * cols)));
        return m;
    }

    /// <summary>One column, rows [r0, r1): the reference's steps, for the last few columns and the scalar fallback.</summary>
    static void ScalarColumn(KernelArgs j, int r0, int r1, int c, bool perTensor)
    {
        int cols = j.Cols;
        for (int ob = r0; ob < r1; ob += Outer)
        {
            int count = Math.Min(Outer, r1 - ob);
            float so = j.TensorOuter;
            if (!perTensor)
            {
                int mb = 0;
                for (int k = 0; k < count; k++) mb = Math.Max(mb, (int)(Bits.AsUInt(j.X[(long)(ob + k) * cols + c]) & 0x7FFFFFFFu));
                if (mb >= 0x7F800000)
                {
                    for (int k = 0; k < count; k++) j.Y[(long)(ob + k) * cols + c] = float.NaN;
                    continue;
                }
                so = ScalarCore.NvOuterScale(Bits.AsFloat((uint)mb));
            }
            for (int ib = ob; ib < ob + count; ib += Inner)
            {
                int ic = Math.Min(Inner, ob + count - ib);
                float amax = 0;
                for (int k = 0; k < ic; k++) amax = Math.Max(amax, Bits.Abs(j.X[(long)(ib + k) * cols + c]));
                float si = so == 0f ? 0f : ScalarCore.NvInnerScale(amax, so);
                float scale = si * so;
                long i0 = (long)ib * cols + c;
                if (scale == 0f) { for (int k = 0; k < ic; k++) j.Y[i0 + (long)k * cols] = 0f; continue; }
                ScalarInner(j, i0, ic, cols, scale);
            }
        }
    }

    /// <summary>Per-tensor NVFP4 with 16×16 tiles (one E4M3 scale per tile), rows [r0, r1) in multiples of 16.</summary>
    public static void Tiles16(KernelArgs j, int r0, int r1)
    {
        int cols = j.Cols;
        float so = j.TensorOuter;
        float* u = stackalloc float[Inner];
        bool vec = CpuQuantizer.Vectorised;
        for (int tr = r0; tr < r1; tr += Inner)
            for (int tc = 0; tc < cols; tc += Inner)
            {
                float* t = j.X + (long)tr * cols + tc;
                int mb = 0;
                for (int r = 0; r < Inner; r++) mb = Math.Max(mb, MaxBits(t + (long)r * cols, Inner));
                float si = so == 0f ? 0f : ScalarCore.NvInnerScale(Bits.AsFloat((uint)mb), so);
                float scale = si * so;
                for (int r = 0; r < Inner; r++)
                {
                    long i0 = (long)(tr + r) * cols + tc;
                    if (scale == 0f) KernelArgs.Fill(j.Y + i0, Inner, 0f);
                    else if (!vec) ScalarInner(j, i0, Inner, 1, scale);
                    else
                    {
                        if (R.UsesRandom) PhiloxVector.Fill(j.Seed, j.Stream, i0, Inner, u);
                        var sc = Vector256.Create(scale);
                        for (int h = 0; h < Inner; h += 8)
                        {
                            var ev = R.UsesEma ? Vector256.Load(j.E + i0 + h) / sc : default;
                            var uv = R.UsesRandom ? Vector256.Load(u + h) : default;
                            (R.Fp4(Vector256.Load(j.X + i0 + h) / sc, uv, ev) * sc).Store(j.Y + i0 + h);
                        }
                    }
                }
            }
    }
}
