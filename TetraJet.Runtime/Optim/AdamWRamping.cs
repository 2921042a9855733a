using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Optim;

/// <summary>
/// AdamW-Ramping (TetraJet Q-Ramping, ALGORITHMS.md §5): AdamW whose quantized weights update only every
/// <c>period</c> steps per element, with the gradients accumulated in between and the step scaled by the
/// number of accumulated steps; weight decay applies to every element every step. With all periods 1 it is
/// TorchSharp's AdamW, operation for operation.
/// </summary>
public sealed class AdamWRamping : IDisposable
{
    sealed class State(Parameter p, double weightDecay)
    {
        public readonly Parameter Param = p;
        public readonly double WeightDecay = weightDecay;
        public Tensor M = zeros_like(p).DetachFromDisposeScope(), V = zeros_like(p).DetachFromDisposeScope(),
            StepAcc = zeros_like(p).DetachFromDisposeScope(), GradAcc = zeros_like(p).DetachFromDisposeScope();
        public Tensor Period = ones_like(p, dtype: ScalarType.Int32).DetachFromDisposeScope();
        public Tensor[] All => [M, V, StepAcc, GradAcc, Period];
    }

    readonly List<State> _states;
    long _t;

    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    /// <summary>Global step count t (bias corrections).</summary>
    public long StepCount => _t;

    public AdamWRamping(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : this(parameters.Select(p => (p, weightDecay)), lr, beta1, beta2, eps)
    {
    }

    /// <summary>With a decoupled weight decay per parameter (e.g. 0 for norms and biases), as AdamW's parameter groups give.</summary>
    public AdamWRamping(IEnumerable<(Parameter Parameter, double WeightDecay)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _states = parameters.Select(p => new State(p.Parameter, p.WeightDecay)).ToList();
        if (_states.Any(s => s.WeightDecay < 0)) throw new ArgumentException("weight decay must be ≥ 0");
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps;
    }

    /// <summary>The decoupled weight decay of <paramref name="p"/>.</summary>
    public double WeightDecay(Parameter p) => _states.First(x => ReferenceEquals(x.Param, p)).WeightDecay;

    public IEnumerable<Parameter> Parameters => _states.Select(s => s.Param);

    /// <summary>Sets the per-element update period of one parameter (an integer tensor ≥ 1 of its shape).</summary>
    public void SetPeriod(Parameter p, Tensor period)
    {
        var s = _states.FirstOrDefault(x => ReferenceEquals(x.Param, p)) ?? throw new ArgumentException("the parameter is not managed by this optimizer");
        if (!period.shape.SequenceEqual(p.shape)) throw new ArgumentException($"period shape [{string.Join(", ", period.shape)}] differs from the parameter's [{string.Join(", ", p.shape)}]");
        if (period.lt(1).any().item<bool>()) throw new ArgumentException("periods must be at least 1");
        s.Period.Dispose();
        // Owned by the optimizer: a dispose scope around the caller's training step must not take it.
        s.Period = period.to(ScalarType.Int32, p.device).clone().DetachFromDisposeScope();
    }

    public Tensor Period(Parameter p) => _states.First(x => ReferenceEquals(x.Param, p)).Period;

    /// <summary>step_acc of one parameter: the steps accumulated per element since its last update.</summary>
    public Tensor StepAccumulator(Parameter p) => _states.First(x => ReferenceEquals(x.Param, p)).StepAcc;

    /// <summary>grad_acc of one parameter: the gradients accumulated per element since its last update.</summary>
    public Tensor GradientAccumulator(Parameter p) => _states.First(x => ReferenceEquals(x.Param, p)).GradAcc;

    public void zero_grad()
    {
        foreach (var s in _states) s.Param.grad?.zero_();
    }

    public void step()
    {
        using var _ = no_grad();
        _t++;
        double lr = LearningRate;
        double bc1 = 1 - Math.Pow(Beta1, _t), bc2 = 1 - Math.Pow(Beta2, _t);
        foreach (var s in _states)
        {
            var g = s.Param.grad;
            if (g is null) continue;
            using var scope = NewDisposeScope();
            s.Param.mul_(1 - lr * s.WeightDecay);
            s.StepAcc.add_(1);
            if (g.isfinite().all().item<bool>()) s.GradAcc.add_(g);
            var due = s.StepAcc.remainder(s.Period.to(s.StepAcc.dtype)).eq(0);
            var gHat = s.GradAcc / s.StepAcc;
            var m = s.M.mul(Beta1).add_(gHat, alpha: 1 - Beta1);
            var v = s.V.mul(Beta2).addcmul_(gHat, gHat, value: 1 - Beta2);
            s.M.copy_(where(due, m, s.M));
            s.V.copy_(where(due, v, s.V));
            var denom = (s.V.sqrt() / Math.Sqrt(bc2)).add_(Eps);
            var updated = s.Param.addcdiv(s.M * s.StepAcc, denom, value: -(lr / bc1));
            s.Param.copy_(where(due, updated, s.Param));
            s.StepAcc.masked_fill_(due, 0);
            s.GradAcc.masked_fill_(due, 0);
        }
    }

    /// <summary>
    /// Every period 1 and nothing accumulated (step_acc = grad_acc = 0): plain AdamW, as Q-Ramping's calibration steps
    /// run. Calibration restores the state afterwards.
    /// </summary>
    public void ClearRamping()
    {
        using var _ = no_grad();
        foreach (var s in _states)
        {
            s.Period.fill_(1);
            s.StepAcc.zero_();
            s.GradAcc.zero_();
        }
    }

    /// <summary>A deep copy of the optimizer state (for Q-Ramping's calibration).</summary>
    public object Snapshot() => (_t, LearningRate, _states.Select(s => s.All.Select(t => t.clone()).ToArray()).ToList());

    public void Restore(object snapshot)
    {
        var (t, lr, tensors) = ((long, double, List<Tensor[]>))snapshot;
        _t = t; LearningRate = lr;
        for (int i = 0; i < _states.Count; i++)
        {
            var a = _states[i].All;
            for (int k = 0; k < a.Length; k++) a[k].copy_(tensors[i][k]);
        }
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_t); w.Write(LearningRate); w.Write(_states.Count);
        foreach (var s in _states) foreach (var t in s.All) t.Save(w);
    }

    public void Load(BinaryReader r)
    {
        _t = r.ReadInt64(); LearningRate = r.ReadDouble();
        int n = r.ReadInt32();
        if (n != _states.Count) throw new InvalidDataException($"the optimizer state holds {n} parameters, this model has {_states.Count}");
        foreach (var s in _states) foreach (var t in s.All) TensorExtensionMethods.Load(t, r);
    }

    public void Dispose()
    {
        foreach (var s in _states) foreach (var t in s.All) t.Dispose();
    }
}
