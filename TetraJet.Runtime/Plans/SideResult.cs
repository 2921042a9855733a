using TetraJet.Quantization.Gpu;

namespace TetraJet.Plans;

/// <summary>
/// A quantizer's output queued on the device's side stream (<see cref="CudaRunner.Aside{T}"/>), or computed in line
/// where there is none: <see cref="Ready"/> makes torch's default stream wait for it, then returns it.
/// </summary>
public sealed class SideResult<T> : ISideWork
{
    readonly T value;
    readonly CudaRunner? runner;
    IntPtr done;

    internal SideResult(T value, CudaRunner? runner, IntPtr done) => (this.value, this.runner, this.done) = (value, runner, done);

    /// <summary>The output, once everything that follows on the default stream is ordered after it.</summary>
    public T Ready()
    {
        Wait();
        return value;
    }

    /// <summary>Orders the default stream after this work (once; later calls do nothing).</summary>
    public void Wait()
    {
        if (done == IntPtr.Zero) return;
        runner!.WaitFor(done);
        done = IntPtr.Zero;
    }
}

/// <summary>Side work a step waits for before it releases what the work read (<see cref="LinearStep.Release"/>).</summary>
internal interface ISideWork
{
    void Wait();
}
