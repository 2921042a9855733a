using ILGPU;
using ILGPU.Runtime;

namespace TetraJet.Quantization.Gpu;

public static partial class GpuQuantizer
{
    /// <summary>
    /// One step of the oscillation report (<see cref="OscillationKernels"/>) on host arrays: <paramref name="prevW"/>,
    /// <paramref name="prevQ"/>, <paramref name="dfp"/> and <paramref name="dq"/> updated in place, the step's flipped
    /// fraction added to <paramref name="changed"/>.
    /// </summary>
    public static void OscillationStep(Accelerator acc, float[] w, float[] q, float[] prevW, float[] prevQ, float[] dfp, float[] dq, ref double changed)
    {
        int n = w.Length;
        if (new[] { q, prevW, prevQ, dfp, dq }.Any(a => a.Length != n)) throw new ArgumentException("the oscillation arrays differ in length");
        using var wb = acc.Allocate1D(Nonempty(w));
        using var qb = acc.Allocate1D(Nonempty(q));
        using var pwb = acc.Allocate1D(Nonempty(prevW));
        using var pqb = acc.Allocate1D(Nonempty(prevQ));
        using var fb = acc.Allocate1D(Nonempty(dfp));
        using var db = acc.Allocate1D(Nonempty(dq));
        using var flips = acc.Allocate1D(new int[1]);
        using var ch = acc.Allocate1D(new[] { changed });
        var runner = new IlgpuRunner(acc);
        runner.Launch(LibraryKernels.OscillationObserve, KernelGeometry.OscillationThreads(n),
            V(wb), V(qb), V(pwb), V(pqb), V(fb), V(db), V(flips), n);
        runner.Launch(LibraryKernels.OscillationAccumulate, KernelGeometry.OneThread, V(flips), V(ch), n);
        acc.Synchronize();
        pwb.GetAsArray1D().AsSpan(0, n).CopyTo(prevW);
        pqb.GetAsArray1D().AsSpan(0, n).CopyTo(prevQ);
        fb.GetAsArray1D().AsSpan(0, n).CopyTo(dfp);
        db.GetAsArray1D().AsSpan(0, n).CopyTo(dq);
        changed = ch.GetAsArray1D()[0];
    }
}
