using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace TetraJet.Plans;

/// <summary>
/// What decides a layer's dataflow: the six slots and the options that change which kernels run (Q-EMA's EMA-guided
/// Q2, OutControl's split). Other options (decays, thresholds, schedules, OsciReset, Q-Ramping) act on the layer's
/// state or the optimizer, not on the plan. Recipes with equal keys share a plan.
/// </summary>
public sealed record PlanKey(QuantizerSlot Q1, QuantizerSlot Q2, QuantizerSlot Q3, QuantizerSlot Q4, QuantizerSlot Q5, QuantizerSlot Q6,
    bool QEma, bool OutControl)
{
    public static PlanKey Of(Recipe r) => new(r.Q1, r.Q2, r.Q3, r.Q4, r.Q5, r.Q6, r.QEma && r.Q2.IsQuantized, r.OutControl && r.Q1.IsQuantized);
}

/// <summary>
/// The plans generated code registers (every configuration its compilation can select), looked up once when a layer
/// is built. A layer whose configuration has none runs a <see cref="DynamicPlan"/> and says so once.
/// </summary>
public static class PlanRegistry
{
    static readonly ConcurrentDictionary<PlanKey, LinearPlan> Plans = new();
    static readonly ConcurrentDictionary<PlanKey, DynamicPlan> Unspecialised = new();

    /// <summary>Registers generated plans (called by generated code); the first plan of a key wins.</summary>
    public static void Register(params LinearPlan[] plans)
    {
        foreach (var p in plans) Plans.TryAdd(PlanKey.Of(p.Recipe), p);
    }

    /// <summary>
    /// The generated plan of <paramref name="recipe"/>'s configuration, or null. A miss first registers the plans of
    /// the program's assemblies not yet seen: generated code registers from a module initializer, which .NET runs only
    /// when something in that assembly is first used, and a layer may be built before any model type is touched.
    /// </summary>
    public static LinearPlan? Find(Recipe recipe)
    {
        var key = PlanKey.Of(recipe);
        if (Plans.TryGetValue(key, out var p)) return p;
        RegisterProgramAssemblies();
        return Plans.TryGetValue(key, out p) ? p : null;
    }

    static readonly HashSet<string> Scanned = [];
    static readonly Lock ScanGate = new();

    /// <summary>Runs the module initializer of every loaded or entry-referenced assembly that references this one.</summary>
    static void RegisterProgramAssemblies()
    {
        var runtime = typeof(PlanRegistry).Assembly.GetName().Name;
        var candidates = new List<Assembly>(AppDomain.CurrentDomain.GetAssemblies());
        if (Assembly.GetEntryAssembly() is { } entry)
            foreach (var name in entry.GetReferencedAssemblies())
            {
                try { candidates.Add(Assembly.Load(name)); }
                catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException) { }
            }
        foreach (var asm in candidates)
        {
            if (asm.IsDynamic) continue;
            lock (ScanGate)
                if (!Scanned.Add(asm.FullName ?? asm.ManifestModule.Name)) continue;
            if (asm.GetReferencedAssemblies().Any(r => r.Name == runtime))
                RuntimeHelpers.RunModuleConstructor(asm.ManifestModule.ModuleHandle);
        }
    }

    /// <summary>
    /// The generated plan of <paramref name="recipe"/>'s configuration, or the unspecialised plan of it (one per
    /// configuration; it says so once, on its first use).
    /// </summary>
    public static LinearPlan For(Recipe recipe) =>
        Find(recipe) ?? Unspecialised.GetOrAdd(PlanKey.Of(recipe), _ => new DynamicPlan(recipe));

    internal static string Describe(PlanKey k) =>
        $"Q1 {k.Q1}, Q2 {k.Q2}, Q3 {k.Q3}, Q4 {k.Q4}, Q5 {k.Q5}, Q6 {k.Q6}{(k.QEma ? ", Q-EMA" : "")}{(k.OutControl ? ", OutControl" : "")}";
}

/// <summary>One-line run-time notices (a layer's configuration, an option that cannot apply): standard error by default.</summary>
public static class Notices
{
    /// <summary>Where notices go; set it to route them elsewhere (a logger, a test's list).</summary>
    public static Action<string> Sink { get; set; } = line => Console.Error.WriteLine(line);

    public static void Write(string line) => Sink(line);
}
