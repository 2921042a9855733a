using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

namespace TetraJet.Tests;

/// <summary>
/// Every test runs inside a dispose scope that ends with the test. TorchSharp passes raw handles to libtorch, so a
/// temporary that nothing references any more (<c>a.eq(b).all()</c>: the result of <c>eq</c>) can be finalized, and its
/// tensor freed, while a native call still reads it; the scope keeps every tensor a test creates alive until the test
/// is over. Tensors a test keeps beyond itself must be detached from the scope (as the library's caches are).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
sealed class TensorScopePerTestAttribute : BeforeAfterTestAttribute
{
    // Tests run one at a time (both assemblies disable parallel runs). Not thread-static: an async test may end on
    // another thread than the one it started on, and its scope must still end with it.
    static DisposeScope? scope;

    public override void Before(MethodInfo methodUnderTest) => scope = torch.NewDisposeScope();

    public override void After(MethodInfo methodUnderTest)
    {
        scope?.Dispose();
        scope = null;
    }
}

public class TensorScopePerTestTests
{
    [Fact]
    public void A_test_runs_inside_its_own_dispose_scope()
    {
        Assert.NotNull(torch.CurrentDisposeScope);
        var t = torch.ones(3);
        Assert.True(torch.CurrentDisposeScope!.Contains(t));
    }

    [Fact]
    public void What_a_rank_thread_creates_is_handed_to_the_test_scope()
    {
        var made = FakeGroup.Run(2, comm => torch.full(3, comm.Rank));
        Assert.All(made, t => Assert.True(torch.CurrentDisposeScope!.Contains(t)));
        Assert.Equal(1L, made[1][2].item<long>());
    }
}
