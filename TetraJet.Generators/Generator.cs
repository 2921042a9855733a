using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TetraJet.Generators;

/// <summary>
/// Implements <c>[Linear]</c> partial properties and <c>InitializeQuantization()</c> for TorchSharp model classes, and
/// one plan per distinct layer configuration in the compilation: its ILGPU kernel entry points and its forward and
/// backward as straight-line code with its own autograd function.
/// </summary>
/// <remarks>
/// Pipeline: attributed syntax → <see cref="Parser"/> → equatable specs → <see cref="Emitter"/>. Each step has a
/// tracking name (<see cref="TrackingNames"/>) so that tests can check that unrelated edits leave it cached. Invalid
/// declarations are skipped here without a word: <see cref="QuantizationAnalyzer"/> reports them on their source, where
/// <c>#pragma warning</c> and .editorconfig severities apply.
/// </remarks>
[Generator(LanguageNames.CSharp)]
public sealed partial class Generator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // [Linear] properties, grouped into their model classes.
        var linearProperties = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.LinearAttribute,
                static (node, _) => node is PropertyDeclarationSyntax,
                static (context, cancellationToken) => Parser.ParseLinearProperty(context, cancellationToken))
            .WithTrackingName(TrackingNames.LinearProperties)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!);

        var models = linearProperties
            .Collect()
            .Select(static (properties, cancellationToken) => Parser.GroupModels(properties, cancellationToken))
            .WithTrackingName(TrackingNames.Models);

        var configNamespace = context.CompilationProvider
            .Select(static (compilation, _) => Emitter.ConfigNamespace(compilation.AssemblyName));

        var model = models
            .SelectMany(static (models, _) => models.AsImmutableArray())
            .Combine(configNamespace)
            .WithTrackingName(TrackingNames.Model);
        context.RegisterSourceOutput(model, static (context, pair) => Execute.EmitModel(context, pair.Left, pair.Right));

        var configs = models
            .Select(static (models, _) => Parser.CollectConfigs(models))
            .Combine(configNamespace)
            .WithTrackingName(TrackingNames.LinearConfigs);
        context.RegisterSourceOutput(configs, static (context, pair) => Execute.EmitRecipes(context, pair.Left, pair.Right));

        // One plan per configuration the compilation can select: its kernels and straight-line dataflow.
        var plans = models
            .Select(static (models, _) => Parser.CollectPlans(models))
            .WithTrackingName(TrackingNames.Plans);
        var plan = plans
            .SelectMany(static (plans, _) => plans.AsImmutableArray())
            .Combine(configNamespace)
            .WithTrackingName(TrackingNames.Plan);
        context.RegisterSourceOutput(plan, static (context, pair) => Execute.EmitPlan(context, pair.Left, pair.Right));
        context.RegisterSourceOutput(plans.Combine(configNamespace), static (context, pair) => Execute.EmitRegistry(context, pair.Left, pair.Right));
    }
}
