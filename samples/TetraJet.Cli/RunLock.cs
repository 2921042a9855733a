namespace TetraJet.Cli;

/// <summary>
/// Holds a run folder for one <c>tetrajet train</c> at a time: an exclusive lock on <see cref="FileName"/> in it
/// (FileShare.None, which .NET takes as an advisory flock on Linux and macOS and a sharing lock on Windows). The
/// operating system drops the lock when the process ends, however it ends; the file is removed on a clean exit.
/// </summary>
sealed class RunLock : IDisposable
{
    public const string FileName = ".tetrajet.lock";
    readonly FileStream _file;

    RunLock(FileStream file) => _file = file;

    /// <summary>Takes the lock of an existing folder, or throws a <see cref="UsageException"/> when another run holds it.</summary>
    public static RunLock Acquire(string dir)
    {
        var path = Path.Combine(dir, FileName);
        try
        {
            return new RunLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose));
        }
        catch (IOException)
        {
            throw new UsageException($"{dir} is in use by another 'tetrajet train'; wait for it to finish, or choose another --out");
        }
    }

    public void Dispose() => _file.Dispose();
}
