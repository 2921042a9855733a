using System.CommandLine;

var root = new RootCommand("tetrajet: fully-quantized FP4 training for TorchSharp");
root.Subcommands.Add(TetraJet.Cli.Quantize.QuantizeCommand.Create());
root.Subcommands.Add(TetraJet.Cli.ExperimentCommand.Create(Console.Out));
return root.Parse(args).Invoke();
