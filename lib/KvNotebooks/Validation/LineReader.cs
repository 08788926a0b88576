using System.Text;

namespace KvNotebooks.Validation;

/// <summary>
/// Reads text lines with a cap on each line's length and on the total, so a file holding one
/// billion-character line (or a gzip bomb) is refused after reading the cap, not after running out of
/// memory. Input must be valid UTF-8 (the decoder throws on invalid bytes; the error names the line).
/// </summary>
public sealed class LineReader : IDisposable
{
    private readonly StreamReader _reader;
    private readonly string _file;
    private readonly int _maxLineChars;
    private readonly long _maxTotalChars;
    private readonly StringBuilder _line = new();
    private long _total;

    public LineReader(Stream stream, string file, int maxLineChars, long maxTotalChars)
    {
        _reader = new StreamReader(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true),
                                   detectEncodingFromByteOrderMarks: false);
        _file = file;
        _maxLineChars = maxLineChars;
        _maxTotalChars = maxTotalChars;
    }

    /// <summary>1-based number of the line last returned.</summary>
    public int LineNumber { get; private set; }

    /// <summary>The next line without its terminator ("\n" or "\r\n"), or null at the end.</summary>
    public string? ReadLine()
    {
        _line.Clear();
        bool any = false;
        try
        {
            while (true)
            {
                int c = _reader.Read();
                if (c < 0) break;
                any = true;
                if (++_total > _maxTotalChars)
                    throw new InputException(_file, $"line {LineNumber + 1}", $"the file holds more than {_maxTotalChars:N0} characters");
                if (c == '\n') break;
                if (_line.Length >= _maxLineChars)
                    throw new InputException(_file, $"line {LineNumber + 1}", $"is longer than {_maxLineChars:N0} characters");
                _line.Append((char)c);
            }
        }
        catch (DecoderFallbackException e)
        {
            throw new InputException(_file, $"line {LineNumber + 1}", "invalid UTF-8", e);
        }
        if (!any) return null;
        LineNumber++;
        if (_line.Length > 0 && _line[^1] == '\r') _line.Length--;
        return _line.ToString();
    }

    public void Dispose() => _reader.Dispose();
}
