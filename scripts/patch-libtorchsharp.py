#!/usr/bin/env python3
"""Lets TorchSharp's native glue load on Debian 12's libstdc++ (GLIBCXX 3.4.30).

TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 13's libstdc++ and asks for one symbol of
version GLIBCXX_3.4.32: std::ios_base_library_init(), which GCC 13 emits to initialise the iostreams and
which nothing in the library calls at run time (older libstdc++ initialises them itself). The dynamic
loader refuses the whole library for that one missing version. This script marks the symbol weak and the
GLIBCXX_3.4.32 version requirement weak (VER_FLG_WEAK), exactly what the loader needs to accept it: with
a newer libstdc++ the symbol still binds; with an older one it stays unresolved and unused.

Usage: patch-libtorchsharp.py FILE...   (safe to run again: a patched file is left as it is)
"""
import struct
import sys

SYMBOL = b"_ZSt21ios_base_library_initv"
VERSION = b"GLIBCXX_3.4.32"
STB_WEAK = 2
VER_FLG_WEAK = 0x2
SHT_DYNSYM, SHT_GNU_VERNEED = 11, 0x6FFFFFFE


def patch(path):
    with open(path, "rb") as f:
        elf = bytearray(f.read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise SystemExit(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = []
    for i in range(shnum):
        name, type_, _flags, _addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", elf, shoff + i * shentsize)
        sections.append((type_, offset, size, link, entsize))

    def string(table, at):
        start = sections[table][1] + at
        return bytes(elf[start:elf.index(b"\0", start)])

    changed = []
    for type_, offset, size, link, entsize in sections:
        if type_ == SHT_DYNSYM:
            for at in range(offset, offset + size, entsize):
                name, info = struct.unpack_from("<IB", elf, at)
                if string(link, name) == SYMBOL and info >> 4 != STB_WEAK:
                    elf[at + 4] = (STB_WEAK << 4) | (info & 0xF)
                    changed.append("symbol " + SYMBOL.decode() + " weak")
        elif type_ == SHT_GNU_VERNEED:
            at = offset
            while True:
                _ver, count, _file, aux, nxt = struct.unpack_from("<HHIII", elf, at)
                a = at + aux
                for _ in range(count):
                    _hash, flags, _other, name, anext = struct.unpack_from("<IHHII", elf, a)
                    if string(link, name) == VERSION and not flags & VER_FLG_WEAK:
                        struct.pack_into("<H", elf, a + 4, flags | VER_FLG_WEAK)
                        changed.append("version " + VERSION.decode() + " weak")
                    a += anext
                if nxt == 0:
                    break
                at += nxt
    if changed:
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(elf)
        import os, shutil
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
        print(f"{path}: {', '.join(changed)}")
    else:
        print(f"{path}: already patched (or nothing to patch)")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for p in sys.argv[1:]:
        patch(p)
