using System.Buffers.Binary;
using System.IO.Compression;

namespace KvNotebooks.Validation;

/// <summary>
/// Decompresses a gzip file and, at its end, checks the trailer: the CRC-32 and length of what was read must be
/// the ones the file's last 8 bytes record. .NET's GZipStream ends quietly on some truncated files, so without
/// this a set cut at a line boundary would load with its last examples missing. (Files we write hold one gzip
/// member; a file of several concatenated members is refused.)
/// </summary>
public sealed class CheckedGzipStream : Stream
{
    private static readonly uint[] Table = MakeTable();
    private readonly string _path;
    private readonly FileStream _file;
    private readonly GZipStream _gzip;
    private readonly uint _expectedCrc, _expectedLength;
    private uint _crc = 0xFFFFFFFF;
    private long _length;
    private bool _checked;

    public CheckedGzipStream(string path)
    {
        _path = path;
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long fileLength = _file.Length;
        if (fileLength < 18)
        {
            _file.Dispose();
            throw new InputException(path, "", $"{fileLength} bytes: too short for a gzip file");
        }
        Span<byte> trailer = stackalloc byte[8];
        _file.Seek(-8, SeekOrigin.End);
        _file.ReadExactly(trailer);
        _expectedCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        _expectedLength = BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]);
        _file.Seek(0, SeekOrigin.Begin);
        _gzip = new GZipStream(_file, CompressionMode.Decompress);
    }

    public override int Read(Span<byte> buffer)
    {
        int n;
        try { n = _gzip.Read(buffer); }
        catch (InvalidDataException e) { throw new InputException(_path, "", $"not a valid gzip stream ({e.Message})", e); }
        if (n > 0)
        {
            uint crc = _crc;
            foreach (byte b in buffer[..n]) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
            _crc = crc;
            _length += n;
        }
        else if (!_checked && buffer.Length > 0)
        {
            _checked = true;
            uint crc = ~_crc;
            if (crc != _expectedCrc || (uint)_length != _expectedLength)
                throw new InputException(_path, "gzip trailer",
                    $"the data read ({_length:N0} bytes, CRC-32 {crc:x8}) is not what the trailer records ({_expectedLength:N0} bytes mod 2^32, CRC-32 {_expectedCrc:x8}): the file is truncated or corrupt");
        }
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    private static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _gzip.Dispose(); _file.Dispose(); }
        base.Dispose(disposing);
    }
}
