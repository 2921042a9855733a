namespace TetraJet.Generators;

/// <summary>Metadata names of the runtime types the generator looks for, and the pipeline's tracking names.</summary>
internal static class KnownNames
{
    public const string QuantizeAttribute = "TetraJet.QuantizeAttribute";
    public const string QuantizeSlotAttribute = "TetraJet.QuantizeSlotAttribute";
    public const string LinearAttribute = "TetraJet.LinearAttribute";
    public const string QLinear = "TetraJet.QLinear";
    public const string InitializeQuantization = "InitializeQuantization";
}

/// <summary>Names given to pipeline steps with <c>WithTrackingName</c>, so that tests can check that they stay cached.</summary>
public static class TrackingNames
{
    public const string LinearProperties = "LinearProperties";
    public const string Models = "Models";
    public const string Model = "Model";
    public const string LinearConfigs = "LinearConfigs";
    public const string Plans = "Plans";
    public const string Plan = "Plan";
}
