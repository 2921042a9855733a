using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

public sealed partial class Generator
{
    /// <summary>The output side of the pipeline: reports diagnostics and adds sources.</summary>
    private static class Execute
    {
        public static void ReportDiagnostics(SourceProductionContext context, EquatableArray<DiagnosticInfo> diagnostics)
        {
            foreach (var diagnostic in diagnostics) context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }

        public static void EmitModel(SourceProductionContext context, ModelSpec model, string configNamespace)
        {
            ReportDiagnostics(context, model.Diagnostics);
            foreach (var layer in model.Layers) ReportDiagnostics(context, layer.Diagnostics);

            // A class that is not partial or not a module cannot take a generated part without more compiler errors.
            if (!model.CanEmit) return;
            context.AddSource(Emitter.HintName(model), Emitter.EmitModel(model, configNamespace));
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
