using System.Text;
using System.Text.Unicode;

namespace KvNotebooks.Validation;

/// <summary>
/// Opening a file the user named, with the checks every loader needs before reading: it exists, it is a
/// file and not a folder, and it is no larger than the format allows (checked from its length, before a
/// byte is allocated). Text must be valid UTF-8.
/// </summary>
public static class InputFile
{
    /// <summary>Throws <see cref="FileNotFoundException"/> when missing, <see cref="InputException"/> when a folder.</summary>
    public static void RequireFile(string path, string what)
    {
        if (Directory.Exists(path)) throw new InputException(path, "", $"is a folder; expected a {what} file");
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} file '{path}' does not exist", path);
    }

    /// <summary>Throws <see cref="DirectoryNotFoundException"/> when missing, <see cref="InputException"/> when a file.</summary>
    public static void RequireFolder(string path, string what)
    {
        if (File.Exists(path)) throw new InputException(path, "", $"is a file; expected a {what} folder");
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"{what} folder '{path}' does not exist");
    }

    /// <summary>The file's bytes, refusing files longer than <paramref name="maxBytes"/> before reading.</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes)
    {
        RequireFile(path, what);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long length = fs.Length;
        if (length > maxBytes)
            throw new InputException(path, "", $"is {length:N0} bytes; a {what} file may hold at most {maxBytes:N0}");
        var bytes = new byte[length];
        fs.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The file as text: valid UTF-8 (a byte-order mark is skipped), at most <paramref name="maxBytes"/> long.</summary>
    public static string ReadAllText(string path, string what, long maxBytes) => DecodeUtf8(ReadAllBytes(path, what, maxBytes), path);

    /// <summary>UTF-8 bytes to text; invalid sequences are an error naming the byte offset (never replaced by U+FFFD).</summary>
    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, string file, string field = "", bool skipBom = true)
    {
        if (skipBom) bytes = SkipBom(bytes);
        if (!Utf8.IsValid(bytes))
            throw new InputException(file, field, $"invalid UTF-8 at byte {FirstInvalidUtf8(bytes)}");
        return Encoding.UTF8.GetString(bytes);
    }

    public static ReadOnlySpan<byte> SkipBom(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? bytes[3..] : bytes;

    /// <summary>Offset of the first byte that does not start a valid UTF-8 sequence.</summary>
    public static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[i..], out _, out int n) != System.Buffers.OperationStatus.Done) return i;
            i += n;
        }
        return -1;
    }
}
