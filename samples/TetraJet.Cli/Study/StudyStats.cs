namespace TetraJet.Cli.Study;

/// <summary>Mean, sample standard deviation and standard error of a cell's values over seeds.</summary>
public readonly record struct SeedStats(int N, double Mean, double Std)
{
    /// <summary>The standard error of the mean, Std / √N (NaN below two seeds).</summary>
    public double Se => Std / Math.Sqrt(N);

    public static SeedStats Of(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length == 0) return new(0, double.NaN, double.NaN);
        double mean = v.Average();
        // Sample deviation (n − 1): the seeds are a sample of the runs the recipe could give.
        double std = v.Length < 2 ? double.NaN : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
        return new(v.Length, mean, std);
    }
}

/// <summary>The figures a study table reports besides the cells: gaps closed and the ablation's degradations.</summary>
public static class StudyFigures
{
    /// <summary>
    /// G = (m_ref − m_cand) / (m_ref − m_base) and its standard error by the delta method, the three cells' means being
    /// independent (separate runs): with a = m_ref − m_cand and b = m_ref − m_base, Var a = se_ref² + se_cand²,
    /// Var b = se_ref² + se_base², Cov(a, b) = se_ref², and Var G ≈ (Var a − 2G·Cov + G²·Var b) / b².
    /// </summary>
    public static (double Gap, double Se) GapClosed(SeedStats reference, SeedStats candidate, SeedStats baseline)
    {
        double a = reference.Mean - candidate.Mean, b = reference.Mean - baseline.Mean;
        double g = a / b;
        double sr = reference.Se * reference.Se, sc = candidate.Se * candidate.Se, sb = baseline.Se * baseline.Se;
        double var = (sr + sc - 2 * g * sr + g * g * (sr + sb)) / (b * b);
        return (g, Math.Sqrt(var));
    }

    /// <summary>How much worse a cell is than the baseline (in the metric's units, positive = worse) and its standard error.</summary>
    public static (double Degradation, double Se) Degradation(SeedStats cell, SeedStats baseline, bool lowerIsBetter) =>
        (lowerIsBetter ? cell.Mean - baseline.Mean : baseline.Mean - cell.Mean, Math.Sqrt(cell.Se * cell.Se + baseline.Se * baseline.Se));
}
