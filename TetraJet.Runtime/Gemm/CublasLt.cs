using System.Runtime.InteropServices;

namespace TetraJet.Gemm;

/// <summary>
/// The cuBLASLt entry points and constants the FP8 GEMM (and the Blackwell FP4 slot) use, from the library PyTorch's CUDA install already loaded
/// (TorchSharp 0.107 has no float8 dtypes and no <c>_scaled_mm</c>). Values are those of cublasLt.h (CUDA 12.9/13);
/// <see cref="Fp8Gemm"/> checks its results against a BF16 GEMM on first use, so a mismatch is caught, not trusted.
/// </summary>
internal static unsafe class CublasLt
{
    // cudaDataType_t
    public const int R32F = 0, R16BF = 14, R8FE4M3 = 28, R4FE2M1 = 33;
    // cublasComputeType_t
    public const int Compute32F = 68;
    // cublasOperation_t
    public const int OpN = 0, OpT = 1;
    // cublasLtMatmulDescAttributes_t
    public const int DescTransA = 3, DescTransB = 4, DescAScalePointer = 17, DescBScalePointer = 18, DescFastAccum = 25,
        DescAScaleMode = 31, DescBScaleMode = 32;
    // cublasLtMatmulMatrixScale_t
    public const int ScaleScalar32F = 0, ScaleVec16UE4M3 = 1, ScaleVec32UE8M0 = 2, ScaleOuterVec32F = 3, ScaleVec128_32F = 4;
    // cublasLtMatmulPreferenceAttributes_t
    public const int PrefMaxWorkspaceBytes = 1;

    /// <summary>cublasLtMatmulHeuristicResult_t: algo (8 × uint64), workspace size, state, waves, 4 reserved ints.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct HeuristicResult
    {
        public fixed ulong Algo[8];
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    static readonly string[] Names = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"];

    static readonly Lazy<IntPtr> Library = new(() =>
    {
        // Already loaded by libtorch_cuda in this process: dlopen by soname returns that copy.
        foreach (var name in Names)
            if (NativeLibrary.TryLoad(name, out var handle)) return handle;
        return IntPtr.Zero;
    });

    public static bool Available => Library.Value != IntPtr.Zero;

    static T Fn<T>(string name) where T : Delegate =>
        Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(Library.Value, name));

    public delegate int CreateFn(out IntPtr handle);
    public delegate nuint VersionFn();
    public delegate int MatmulDescCreateFn(out IntPtr desc, int computeType, int scaleType);
    public delegate int MatmulDescSetAttributeFn(IntPtr desc, int attribute, void* value, nuint size);
    public delegate int MatrixLayoutCreateFn(out IntPtr layout, int type, ulong rows, ulong cols, long ld);
    public delegate int PreferenceCreateFn(out IntPtr pref);
    public delegate int PreferenceSetAttributeFn(IntPtr pref, int attribute, void* value, nuint size);
    public delegate int HeuristicFn(IntPtr handle, IntPtr desc, IntPtr a, IntPtr b, IntPtr c, IntPtr d, IntPtr pref, int requested,
        HeuristicResult* results, out int returned);
    public delegate int MatmulFn(IntPtr handle, IntPtr desc, void* alpha, IntPtr a, IntPtr aDesc, IntPtr b, IntPtr bDesc, void* beta,
        IntPtr c, IntPtr cDesc, IntPtr d, IntPtr dDesc, void* algo, IntPtr workspace, nuint workspaceSize, IntPtr stream);

    public static readonly Lazy<CreateFn> Create = new(() => Fn<CreateFn>("cublasLtCreate"));
    public static readonly Lazy<VersionFn> GetVersion = new(() => Fn<VersionFn>("cublasLtGetVersion"));
    public static readonly Lazy<MatmulDescCreateFn> MatmulDescCreate = new(() => Fn<MatmulDescCreateFn>("cublasLtMatmulDescCreate"));
    public static readonly Lazy<MatmulDescSetAttributeFn> MatmulDescSetAttribute = new(() => Fn<MatmulDescSetAttributeFn>("cublasLtMatmulDescSetAttribute"));
    public static readonly Lazy<MatrixLayoutCreateFn> MatrixLayoutCreate = new(() => Fn<MatrixLayoutCreateFn>("cublasLtMatrixLayoutCreate"));
    public static readonly Lazy<PreferenceCreateFn> PreferenceCreate = new(() => Fn<PreferenceCreateFn>("cublasLtMatmulPreferenceCreate"));
    public static readonly Lazy<PreferenceSetAttributeFn> PreferenceSetAttribute = new(() => Fn<PreferenceSetAttributeFn>("cublasLtMatmulPreferenceSetAttribute"));
    public static readonly Lazy<HeuristicFn> AlgoGetHeuristic = new(() => Fn<HeuristicFn>("cublasLtMatmulAlgoGetHeuristic"));
    public static readonly Lazy<MatmulFn> Matmul = new(() => Fn<MatmulFn>("cublasLtMatmul"));

    public static void Check(int status, string what)
    {
        if (status != 0) throw new InvalidOperationException($"cuBLASLt: {what} returned status {status}");
    }
}
