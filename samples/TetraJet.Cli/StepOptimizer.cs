using TetraJet.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TetraJet.Cli;

/// <summary>
/// The trainer's optimizer: TorchSharp's AdamW, or AdamW-Ramping when the recipe asks for Q-Ramping. Weight decay
/// is applied by the trainer (decoupled, on the decayed parameters), so both run with weight_decay 0 here.
/// </summary>
abstract class StepOptimizer
{
    public abstract double LearningRate { set; }
    public abstract void ZeroGrad();
    public abstract void Step();
    public abstract void Save(BinaryWriter w);
    public abstract void Load(BinaryReader r);

    public static StepOptimizer Create(IEnumerable<Parameter> parameters, double lr, double beta2, bool ramping) => ramping
        ? new Ramping(new AdamWRamping(parameters, lr, beta1: 0.9, beta2: beta2, eps: 1e-8, weightDecay: 0))
        : new Plain(optim.AdamW(parameters, lr, beta1: 0.9, beta2: beta2, eps: 1e-8, weight_decay: 0));

    sealed class Plain(AdamW opt) : StepOptimizer
    {
        public override double LearningRate { set { foreach (var g in opt.ParamGroups) g.LearningRate = value; } }
        public override void ZeroGrad() => opt.zero_grad();
        public override void Step() => opt.step();
        public override void Save(BinaryWriter w) => opt.save_state_dict(w);
        public override void Load(BinaryReader r) => opt.load_state_dict(r);
    }

    /// <summary>Q-Ramping: <see cref="Calibrate"/> at the start of every epoch sets the per-element periods.</summary>
    public sealed class Ramping(AdamWRamping opt) : StepOptimizer
    {
        public AdamWRamping Optimizer => opt;
        public override double LearningRate { set => opt.LearningRate = value; }
        public override void ZeroGrad() => opt.zero_grad();
        public override void Step() => opt.step();
        public override void Save(BinaryWriter w) => opt.Save(w);
        public override void Load(BinaryReader r) => opt.Load(r);
    }
}
