using System.Runtime.CompilerServices;

namespace TetraJet.Models.Tests;

static class TestSetup
{
    /// <summary>Same OpenMP setting as the CLI, before libtorch loads in the test host.</summary>
    [ModuleInitializer]
    internal static void Init() => Cli.NativeEnvironment.PreferPassiveOpenMpWait();
}
