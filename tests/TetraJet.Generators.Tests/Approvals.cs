using System.Runtime.CompilerServices;
using System.Text;
using Xunit.Sdk;

namespace TetraJet.Generators.Tests;

/// <summary>
/// Approved-file snapshots: <c>Snapshots/{name}.approved.cs</c> holds the accepted text. On a mismatch the new text is
/// written next to it as <c>{name}.received.cs</c> and the test fails with a line diff; to accept a change, replace the
/// approved file with the received one.
/// </summary>
internal static class Approvals
{
    public static void Verify(string received, string name, [CallerFilePath] string callerPath = "")
    {
        var folder = Path.Combine(Path.GetDirectoryName(callerPath)!, "Snapshots");
        var approvedPath = Path.Combine(folder, name + ".approved.cs");
        var receivedPath = Path.Combine(folder, name + ".received.cs");
        received = Normalize(received);

        if (!File.Exists(approvedPath))
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(receivedPath, received);
            throw new XunitException($"No approved snapshot '{name}.approved.cs'; the output was written to '{name}.received.cs'. Review it and rename it to approve.");
        }

        var approved = Normalize(File.ReadAllText(approvedPath));
        if (approved == received)
        {
            if (File.Exists(receivedPath)) File.Delete(receivedPath);
            return;
        }
        File.WriteAllText(receivedPath, received);
        throw new XunitException($"Snapshot '{name}' differs from the approved file (received text written to '{name}.received.cs'):\n" + Diff(approved, received));
    }

    public static string Normalize(string text) => text.Replace("\r\n", "\n").Replace("\r", "\n");

    /// <summary>A compact line diff: the first differing region with two lines of context, '-' approved, '+' received.</summary>
    public static string Diff(string approved, string received)
    {
        var a = approved.Split('\n');
        var b = received.Split('\n');
        var start = 0;
        while (start < a.Length && start < b.Length && a[start] == b[start]) start++;
        int endA = a.Length - 1, endB = b.Length - 1;
        while (endA >= start && endB >= start && a[endA] == b[endB]) { endA--; endB--; }

        var sb = new StringBuilder();
        sb.Append("@@ -").Append(start + 1).Append(" +").Append(start + 1).Append(" @@\n");
        for (var i = Math.Max(0, start - 2); i < start; i++) sb.Append("  ").Append(a[i]).Append('\n');
        for (var i = start; i <= endA; i++) sb.Append("- ").Append(a[i]).Append('\n');
        for (var i = start; i <= endB; i++) sb.Append("+ ").Append(b[i]).Append('\n');
        for (var i = endA + 1; i < Math.Min(a.Length, endA + 3); i++) sb.Append("  ").Append(a[i]).Append('\n');
        return sb.ToString();
    }
}
