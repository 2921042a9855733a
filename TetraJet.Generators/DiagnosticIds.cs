namespace TetraJet.Generators;

/// <summary>The diagnostic IDs, as constants that the code-fix assembly shares (it links this file).</summary>
internal static class DiagnosticIds
{
    public const string ClassNotPartial = "TJ1001";
    public const string NotAModule = "TJ1002";
    public const string FeaturesNotMultipleOfBlock = "TJ1003";
    public const string FeaturesNotPositive = "TJ1004";
    public const string EmaDecayOutOfRange = "TJ1005";
    public const string OsciResetThresholdOutOfRange = "TJ1006";
    public const string OutlierFractionOutOfRange = "TJ1007";
    public const string OptionHasNoEffect = "TJ1008";
    public const string InvalidLinearProperty = "TJ1009";
    public const string SizeMemberNotFound = "TJ1010";
    public const string ConstructorSkipsInitialization = "TJ1011";
    public const string OsciResetLeanFractionOutOfRange = "TJ1012";
    public const string OutControlLeavesTooFewChannels = "TJ1013";
    public const string QuantizeWithoutLinear = "TJ1014";
    public const string FormatNotARecipe = "TJ1015";
    public const string HadamardNotPaired = "TJ1016";
    public const string NearestInBackward = "TJ1017";
    public const string EmaGuidedNotASlotChoice = "TJ1018";
    public const string SlotOverriddenTwice = "TJ1019";
    public const string SlotOptionHasNoEffect = "TJ1020";
    public const string HadamardInForward = "TJ1021";
}
