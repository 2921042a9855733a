using System.Runtime.InteropServices;

namespace TetraJet.Cli;

/// <summary>
/// A request to stop training between two steps, from SIGINT (Ctrl-C) or SIGTERM: the trainer then writes a
/// checkpoint and exits with 128 + the signal number. A second signal is left to its default: it ends the process.
/// </summary>
public sealed class Interruption : IDisposable
{
    readonly List<PosixSignalRegistration> _registrations = [];
    volatile string? _signal;
    int _number;

    /// <summary>The signal that asked to stop (SIGINT, SIGTERM), or null.</summary>
    public string? Signal => _signal;
    public bool Requested => _signal is not null;
    /// <summary>The exit code of an interrupted run: 130 for SIGINT, 143 for SIGTERM.</summary>
    public int ExitCode => 128 + _number;

    /// <summary>Asks to stop, as the signal would (tests and embedding applications call it directly).</summary>
    public void Request(string signal, int number)
    {
        _number = number;
        _signal = signal;
    }

    /// <summary>Listens for SIGINT and SIGTERM until disposed.</summary>
    public static Interruption FromSignals()
    {
        var interruption = new Interruption();
        foreach (var (signal, name, number) in new[] { (PosixSignal.SIGINT, "SIGINT", 2), (PosixSignal.SIGTERM, "SIGTERM", 15) })
            interruption._registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                if (interruption.Requested) return;   // the second one ends the process
                context.Cancel = true;
                interruption.Request(name, number);
            }));
        return interruption;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
