using TetraJet.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace TetraJet.Gemm;

public static unsafe partial class Fp8Gemm
{
    /// <summary>One of cuBLASLt's candidate algorithms for a product: its rank in the heuristic's list, mean time, waves, workspace.</summary>
    internal sealed record Candidate(int Rank, double Ms, float Waves, ulong Workspace, string? Error);

    /// <summary>
    /// Every algorithm cuBLASLt's heuristic offers (up to <paramref name="requested"/>) for D = A·Bᵀ in a scaling mode, each
    /// timed by <paramref name="timeMs"/> (the benchmark's clock): whether the first one, which the layers take, is the fastest.
    /// </summary>
    internal static List<Candidate> Survey(Tensor a8, Tensor aScales, Tensor b8, Tensor bScales, Fp8Scaling scaling, int requested,
        Func<Action, int, double> timeMs, int iterations = 20)
    {
        long m = a8.size(0), n = b8.size(0), k = a8.size(1);
        var device = a8.device;
        int ordinal = device.index < 0 ? 0 : device.index;
        IntPtr handle;
        Tensor workspace;
        lock (Gate) (handle, workspace) = DeviceState(ordinal, device);
        IntPtr sa = TensorMemory.DataPointer(bScales), sb = TensorMemory.DataPointer(aScales);
        var plan = Build(handle, m, n, k, ScalarType.BFloat16, sa, sb, scaling);
        CublasLt.Check(CublasLt.PreferenceCreate.Value(out var pref), "preference");
        ulong ws = (ulong)WorkspaceBytes;
        CublasLt.Check(CublasLt.PreferenceSetAttribute.Value(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, sizeof(ulong)), "workspace size");
        var results = new CublasLt.HeuristicResult[requested];
        int returned;
        fixed (CublasLt.HeuristicResult* r = results)
            CublasLt.Check(CublasLt.AlgoGetHeuristic.Value(handle, plan.Desc, plan.A, plan.B, plan.D, plan.D, pref, requested, r, out returned), "heuristic");
        var d = empty(new[] { m, n }, ScalarType.BFloat16, device);
        var list = new List<Candidate>();
        for (int i = 0; i < returned; i++)
        {
            int status = 0, index = i;
            void Run()
            {
                float alpha = 1f, beta = 0f;
                IntPtr dp = TensorMemory.DataPointer(d);
                fixed (CublasLt.HeuristicResult* algo = &results[index])
                    status = CublasLt.Matmul.Value(handle, plan.Desc, &alpha, TensorMemory.DataPointer(b8), plan.A, TensorMemory.DataPointer(a8), plan.B,
                        &beta, dp, plan.D, dp, plan.D, algo->Algo, TensorMemory.DataPointer(workspace), (nuint)WorkspaceBytes, IntPtr.Zero);
            }
            double ms = timeMs(Run, iterations);
            list.Add(new Candidate(i, ms, results[i].WavesCount, results[i].WorkspaceSize, status == 0 ? null : $"status {status}"));
        }
        return list;
    }
}
