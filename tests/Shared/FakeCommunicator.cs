using TetraJet.Distributed;
using static TorchSharp.torch;

namespace TetraJet.Tests;

/// <summary>
/// In-process ranks for tests (one thread each): a collective waits until every rank has called it, reduces the
/// contributions in rank order and hands each rank the result. Only tests use it; training goes through NCCL.
/// </summary>
sealed class FakeGroup(int worldSize)
{
    readonly Barrier _barrier = new(worldSize);
    readonly Tensor?[] _slots = new Tensor?[worldSize];
    Tensor? _result;

    public int WorldSize => worldSize;
    public FakeCommunicator Rank(int rank) => new(this, rank);

    internal void AllReduce(int rank, Tensor t, ReduceOp op)
    {
        _slots[rank] = t.detach().clone();
        _barrier.SignalAndWait();
        if (rank == 0)
        {
            var acc = _slots[0]!.clone();
            for (int r = 1; r < worldSize; r++)
                acc = op switch { ReduceOp.Sum => acc.add(_slots[r]!), ReduceOp.Max => acc.maximum(_slots[r]!), _ => acc.minimum(_slots[r]!) };
            _result = acc;
        }
        _barrier.SignalAndWait();
        using (no_grad()) t.copy_(_result!);
        _barrier.SignalAndWait();
    }

    internal void Broadcast(int rank, Tensor t, int root)
    {
        if (rank == root) _result = t.detach().clone();
        _barrier.SignalAndWait();
        using (no_grad()) t.copy_(_result!);
        _barrier.SignalAndWait();
    }

    /// <summary>Runs <paramref name="body"/> once per rank, each on its own thread, and rethrows the first failure.</summary>
    public static T[] Run<T>(int worldSize, Func<FakeCommunicator, T> body)
    {
        var group = new FakeGroup(worldSize);
        return group.OnRankThreads(r => body(group.Rank(r)));
    }

    /// <summary>
    /// Runs <paramref name="body"/> once per rank index of this group, each on its own thread; a rank's exception
    /// comes back to the caller (an exception left on a bare thread would end the whole test process). What a rank
    /// creates outside its own dispose scopes is handed to the caller's scope (the test's), so that no temporary of a
    /// rank is left to the finalizer while libtorch may still read it.
    /// </summary>
    public T[] OnRankThreads<T>(Func<int, T> body)
    {
        var results = new T[worldSize];
        var errors = new Exception?[worldSize];
        var callerScope = CurrentDisposeScope;
        var handOver = new Lock();
        var threads = Enumerable.Range(0, worldSize).Select(r => new Thread(() =>
        {
            using var scope = NewDisposeScope();
            try { results[r] = body(r); }
            catch (Exception e) { errors[r] = e; }
            finally { lock (handOver) scope.MoveToOther(callerScope, scope.DisposablesView); }
        }, 16 << 20)).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.Any(e => e is not null)) throw new AggregateException(errors.OfType<Exception>());
        return results;
    }
}

sealed class FakeCommunicator(FakeGroup group, int rank) : ICommunicator
{
    public int Rank => rank;
    public int WorldSize => group.WorldSize;
    public void AllReduce(Tensor tensor, ReduceOp op) => group.AllReduce(rank, tensor, op);
    public void Broadcast(Tensor tensor, int root) => group.Broadcast(rank, tensor, root);
    public void Dispose() { }
}

