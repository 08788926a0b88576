using KvNotebooks.Notebooks;

namespace KvNotebooks.Tests.Notebooks;

public sealed class PathScrubberTests
{
    [Fact]
    public void Paths_under_roots_become_relative_and_others_keep_only_their_name()
    {
        var s = new PathScrubber("/work/repo", "/tmp/nb");
        Assert.Equal("at X() in lib/KvNotebooks/Cache/KvCache.cs:line 42",
            s.Scrub("at X() in /work/repo/lib/KvNotebooks/Cache/KvCache.cs:line 42"));
        Assert.Equal("Could not find file 'data/x.csv'.", s.Scrub("Could not find file '/tmp/nb/data/x.csv'."));
        Assert.Equal("load …/System.Private.CoreLib.dll", s.Scrub("load /usr/share/dotnet/shared/System.Private.CoreLib.dll"));
        Assert.Equal("see https://plotly.com/js/ and tokens/s", s.Scrub("see https://plotly.com/js/ and tokens/s"));
        Assert.Equal(".", s.Scrub("/work/repo"));
    }
}
