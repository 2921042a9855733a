using Microsoft.CodeAnalysis;

namespace TetraJet.Generators;

public sealed partial class Generator
{
    /// <summary>The output side of the pipeline: adds sources. Diagnostics come from the analyzers, not from here.</summary>
    private static class Execute
    {
        public static void EmitModel(SourceProductionContext context, ModelSpec model, string configNamespace)
        {
            // A class that is not partial or not a module cannot take a generated part (TJ1001, TJ1002).
            if (!model.CanEmit) return;
            context.AddSource(Emitter.HintName(model), Emitter.EmitModel(model, configNamespace));
        }

        public static void EmitConfigs(SourceProductionContext context, EquatableArray<ConfigSpec> configs, string configNamespace)
        {
            if (configs.IsEmpty) return;
            context.AddSource(Emitter.ConfigsHintName, Emitter.EmitConfigs(configs.AsImmutableArray(), configNamespace));
        }
    }
}
