using static TorchSharp.torch;

namespace TetraJet.Runtime.Tests;

public class TorchSharpLoadTests
{
    [Fact]
    public void Matmul_of_known_matrices_gives_known_product()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var b = tensor(new float[] { 7, 8, 9, 10, 11, 12 }, 3, 2);
        using var c = a.matmul(b);
        Assert.Equal(new float[] { 58, 64, 139, 154 }, c.data<float>().ToArray());
    }
}
