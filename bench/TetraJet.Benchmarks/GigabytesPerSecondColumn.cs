using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace TetraJet.Benchmarks;

/// <summary>Throughput as bytes read plus bytes written (8 per float32 element: one load, one store) over the mean time.</summary>
public sealed class GigabytesPerSecondColumn(long bytesPerOperation) : IColumn
{
    public string Id => nameof(GigabytesPerSecondColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GB/s: (bytes read + bytes written) / mean time, 8 bytes per element";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        return stats is null ? "NA" : (bytesPerOperation / stats.Mean).ToString("F2");   // bytes per ns = GB/s
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
}
