namespace TetraJet.Cli;

/// <summary>Bad input the user can fix: printed as one line, exit code 2, nothing written.</summary>
public sealed class UsageException(string message) : Exception(message);
