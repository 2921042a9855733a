using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

public sealed partial class Generator
{
    /// <summary>The output side of the pipeline: adds sources. Diagnostics come from the analyzers, not from here.</summary>
    private static class Execute
    {
        public static void EmitModel(SourceProductionContext context, ModelSpec model, string configNamespace)
        {
            if (model.CanEmit)
            {
                context.AddSource(Emitter.HintName(model), Emitter.EmitModel(model, configNamespace));
            }
            else if (model.IsPartial && model.Class.Self.Keyword != "interface")
            {
                // Not a module (TJ1002): members that throw, so that TJ1002 is the only error the user sees.
                context.AddSource(Emitter.HintName(model), Emitter.EmitStubs(model));
            }
            // A type that is not partial (TJ1001) cannot take a generated part at all.
        }

        public static void EmitRecipes(SourceProductionContext context, EquatableArray<ConfigSpec> configs, string configNamespace)
        {
            if (configs.IsEmpty) return;
            context.AddSource(Emitter.RecipesHintName, Emitter.EmitRecipes(configs.AsImmutableArray(), configNamespace));
        }

        public static void EmitPlan(SourceProductionContext context, PlanSpec plan, string configNamespace)
            => context.AddSource(PlanEmitter.HintName(plan), PlanEmitter.Emit(plan, configNamespace));

        public static void EmitRegistry(SourceProductionContext context, EquatableArray<PlanSpec> plans, string configNamespace)
        {
            if (plans.IsEmpty) return;
            context.AddSource(PlanEmitter.RegistryHintName, PlanEmitter.EmitRegistry(plans.AsImmutableArray(), configNamespace));
        }
    }
}
