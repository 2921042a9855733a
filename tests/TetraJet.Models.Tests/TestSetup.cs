using System.Runtime.CompilerServices;

// Runs share libtorch's global generator and two cores: run tests one at a time so seeded runs are reproducible.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: TetraJet.Tests.TensorScopePerTest]

namespace TetraJet.Models.Tests;

static class TestSetup
{
    /// <summary>Same OpenMP setting as the CLI, before libtorch loads in the test host.</summary>
    [ModuleInitializer]
    internal static void Init() => Cli.NativeEnvironment.PreferPassiveOpenMpWait();
}
