using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Text.Json;
using TetraJet.IO;
using TetraJet.Quantization;
using TetraJet.Quantization.Cpu;
using TetraJet.Quantization.Reference;
using TetraJet.Randomness;

namespace TetraJet.Cli.Quantize;

/// <summary>
/// <c>tetrajet quantize</c>: reads a 2-D float32 <c>.npy</c>, quantizes it (optionally after the RHT) and writes the
/// dequantized values. Any failure (bad input, a file that cannot be read or written) gives one stderr line and exit
/// code 2, and leaves the output untouched.
/// </summary>
public static class QuantizeCommand
{
    public const int Ok = 0, BadInput = 2;

    public static Command Create()
    {
        var format = new Option<string>("--format") { Description = "mxfp4 | nvfp4 | nvfp4-tensor | mxfp8", Required = true };
        var scaleRule = new Option<string?>("--scale-rule") { Description = "MXFP4 scale rule: tetrajet (default) | ocp; only with --format mxfp4" };
        var rounding = new Option<string>("--rounding") { Description = "nearest | stochastic", DefaultValueFactory = _ => "nearest" };
        var seed = new Option<ulong>("--seed") { Description = "Philox seed for stochastic rounding and RHT signs" };
        var stream = new Option<ulong>("--stream") { Description = "Philox stream id" };
        var axis = new Option<string>("--axis") { Description = "block axis: last | first", DefaultValueFactory = _ => "last" };
        var hadamard = new Option<bool>("--hadamard") { Description = "apply the 16-point random Hadamard transform along the block axis first" };
        var stats = new Option<bool>("--stats") { Description = "print one JSON line of error statistics" };
        var input = new Option<string>("--input") { Description = "2-D little-endian float32 .npy", Required = true };
        var output = new Option<string>("--output") { Description = "where to write the dequantized float32 .npy", Required = true };
        var command = new Command("quantize", "Quantize a 2-D float32 .npy matrix and write its dequantized values")
        {
            format, scaleRule, rounding, seed, stream, axis, hadamard, stats, input, output,
        };
        command.Action = new QuantizeAction(r => new QuantizeArgs
        {
            Format = r.GetValue(format),
            ScaleRule = r.GetValue(scaleRule),
            Rounding = r.GetValue(rounding) ?? "nearest",
            Seed = r.GetValue(seed),
            Stream = r.GetValue(stream),
            Axis = r.GetValue(axis) ?? "last",
            Hadamard = r.GetValue(hadamard),
            Stats = r.GetValue(stats),
            Input = r.GetValue(input),
            Output = r.GetValue(output),
        });
        return command;
    }

    /// <summary>Parses <paramref name="args"/> (the words after <c>quantize</c>) and runs, writing to the given writers.</summary>
    public static int Invoke(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr) =>
        Create().Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });

    /// <summary>
    /// Runs the command on already-parsed arguments. Returns 0 on success, 2 on bad input or a file that cannot be
    /// read or written (one line on <paramref name="stderr"/>, output untouched).
    /// </summary>
    public static int Run(QuantizeArgs args, TextWriter stdout, TextWriter stderr)
    {
        string? temp = null;
        try
        {
            var spec = ParseSpec(args, out var axis);
            if (string.IsNullOrEmpty(args.Input)) throw new UsageException("--input is required");
            if (string.IsNullOrEmpty(args.Output)) throw new UsageException("--output is required");
            if (!File.Exists(args.Input)) throw new UsageException($"input file '{args.Input}' not found");
            if (SameFile(args.Input, args.Output))
                throw new UsageException($"--output '{args.Output}' is the input file; writing it would replace the data being quantized. Choose another --output");
            float[] x;
            int rows, cols;
            try { x = Npy.ReadMatrix(args.Input, out rows, out cols); }
            catch (NpyFormatException e) { throw new UsageException($"input '{args.Input}': {e.Message}"); }
            try { ReferenceQuantizer.CheckShape(rows, cols, axis, spec, padBlockAxis: false, what: $"input '{args.Input}' of shape ({rows}, {cols})"); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            string outDir = Path.GetDirectoryName(Path.GetFullPath(args.Output))!;
            if (!Directory.Exists(outDir)) throw new UsageException($"output folder '{outDir}' does not exist");

            if (args.Hadamard) CpuHadamard.Apply(x, x, rows, cols, axis, Philox.HadamardSigns(args.Seed, args.Stream));
            var y = new float[x.Length];
            CpuQuantizer.Quantize(x, y, rows, cols, axis, spec, args.Seed, args.Stream);
            // Before the output is written: a failure here must not leave a half-finished command behind.
            string? stats = args.Stats ? QuantizeStats.Compute(x, y, rows, cols, axis, spec, args).ToJson() : null;

            // Write next to the target and rename, so a failure never leaves a partial or clobbered output.
            temp = Path.Combine(outDir, $".{Path.GetFileName(args.Output)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
            Npy.WriteMatrix(temp, y, rows, cols);
            File.Move(temp, args.Output, overwrite: true);
            temp = null;
            if (stats is not null) stdout.WriteLine(stats);
            return Ok;
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"tetrajet quantize: {e.Message}");
            return BadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException)
        {
            stderr.WriteLine($"tetrajet quantize: {e.Message.ReplaceLineEndings(" ")}");
            return BadInput;
        }
        finally
        {
            if (temp is not null) try { File.Delete(temp); } catch (IOException) { }
        }
    }

    static QuantSpec ParseSpec(QuantizeArgs a, out BlockAxis axis)
    {
        var format = a.Format switch
        {
            "mxfp4" => QuantFormat.MXFP4,
            "nvfp4" => QuantFormat.NVFP4,
            "nvfp4-tensor" => QuantFormat.NVFP4Tensor,
            "mxfp8" => QuantFormat.MXFP8,
            null => throw new UsageException("--format is required (mxfp4 | nvfp4 | nvfp4-tensor | mxfp8)"),
            _ => throw new UsageException($"unknown --format '{a.Format}' (expected mxfp4 | nvfp4 | nvfp4-tensor | mxfp8)"),
        };
        var rule = a.ScaleRule switch
        {
            null or "tetrajet" => ScaleRule.TetraJet,
            "ocp" => ScaleRule.Ocp,
            _ => throw new UsageException($"unknown --scale-rule '{a.ScaleRule}' (expected tetrajet | ocp)"),
        };
        if (a.ScaleRule is not null && format != QuantFormat.MXFP4)
            throw new UsageException($"--scale-rule applies to --format mxfp4 only; {a.Format} has its own scales. Drop --scale-rule");
        var rounding = a.Rounding switch
        {
            "nearest" => Rounding.Nearest,
            "stochastic" => Rounding.Stochastic,
            _ => throw new UsageException($"unknown --rounding '{a.Rounding}' (expected nearest | stochastic)"),
        };
        axis = a.Axis switch
        {
            "last" => BlockAxis.Last,
            "first" => BlockAxis.First,
            _ => throw new UsageException($"unknown --axis '{a.Axis}' (expected last | first)"),
        };
        return new QuantSpec(format, rounding, rule);
    }

    /// <summary>Whether two paths name one file (after links are followed), so that writing one destroys the other.</summary>
    static bool SameFile(string a, string b)
    {
        static string Resolve(string path)
        {
            var full = Path.GetFullPath(path);
            try { return File.Exists(full) ? new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full : full; }
            catch (IOException) { return full; }
        }
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return string.Equals(Resolve(a), Resolve(b), comparison);
    }

    sealed class UsageException(string message) : Exception(message);

    /// <summary>Runs the command; parse errors (unknown option, bad value, missing option) become one stderr line and exit code 2.</summary>
    sealed class QuantizeAction(Func<ParseResult, QuantizeArgs> bind) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var config = parseResult.InvocationConfiguration;
            if (parseResult.Errors.Count > 0)
            {
                config.Error.WriteLine($"tetrajet quantize: {parseResult.Errors[0].Message.ReplaceLineEndings(" ")}");
                return BadInput;
            }
            if (parseResult.UnmatchedTokens.Count > 0)
            {
                config.Error.WriteLine($"tetrajet quantize: unknown option or argument '{parseResult.UnmatchedTokens[0]}'");
                return BadInput;
            }
            return Run(bind(parseResult), config.Output, config.Error);
        }
    }
}
