namespace TetraJet.Cli.Quantize;

/// <summary>
/// The options of <c>tetrajet quantize</c> as given on the command line: enumerated values stay strings so that
/// <see cref="QuantizeCommand.Run"/> reports an unknown one like any other bad input.
/// </summary>
public sealed record QuantizeArgs
{
    /// <summary>mxfp4 | nvfp4 | nvfp4-tensor | mxfp8.</summary>
    public string? Format { get; init; }
    /// <summary>tetrajet | ocp; MXFP4 only (null: tetrajet). Given with another format, it is refused.</summary>
    public string? ScaleRule { get; init; }
    /// <summary>nearest | stochastic.</summary>
    public string Rounding { get; init; } = "nearest";
    public ulong Seed { get; init; }
    public ulong Stream { get; init; }
    /// <summary>last | first: the block axis of the 2-D input.</summary>
    public string Axis { get; init; } = "last";
    /// <summary>Apply the 16-point random Hadamard transform along the block axis before quantizing.</summary>
    public bool Hadamard { get; init; }
    /// <summary>Print one JSON line of error statistics to stdout.</summary>
    public bool Stats { get; init; }
    public string? Input { get; init; }
    public string? Output { get; init; }
}
