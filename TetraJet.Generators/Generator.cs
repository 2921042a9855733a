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
/// tracking name (<see cref="TrackingNames"/>) so that tests can check that unrelated edits leave it cached.
/// </remarks>
[Generator(LanguageNames.CSharp)]
public sealed partial class Generator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // [Quantize] on classes and properties: option ranges and options without effect.
        var quantizeTargets = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.QuantizeAttribute,
                static (node, _) => node is TypeDeclarationSyntax or PropertyDeclarationSyntax,
                static (context, cancellationToken) => Parser.ParseQuantizeTarget(context, cancellationToken))
            .WithTrackingName(TrackingNames.QuantizeTargets);
        context.RegisterSourceOutput(quantizeTargets, static (context, spec) => Execute.ReportDiagnostics(context, spec.Diagnostics));

        // [Linear] properties, grouped into their model classes.
        var linearProperties = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.LinearAttribute,
                static (node, _) => node is PropertyDeclarationSyntax,
                static (context, cancellationToken) => Parser.ParseLinearProperty(context, cancellationToken))
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .WithTrackingName(TrackingNames.LinearProperties);

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
