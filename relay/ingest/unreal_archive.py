"""Unreal Engine crash archives (`.uecrash`, what CrashReportClient uploads) and the files Sentry reads inside.

The archive is one zlib stream. Inside, little-endian (as getsentry/symbolic's `symbolic-unreal` reads it):

- legacy (UE4): a placeholder header, the files, then the real header, whose last int32 is the file count;
- `CR1` (newer CrashReportClients): the bytes `CR1`, one header, then the files.

A header is FString directory, FString name, int32 uncompressed size, int32 file count; a file is int32 index,
FString name, int32 length and that many bytes; an FString is an int32 n and n bytes (ANSI, NUL-padded), or for
a negative n, -n UTF-16LE code units. Every length is checked against what is left before anything is sliced.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import HttpError
from ..units import format_size

_STEP = 1024 * 1024  # decompressed output grows by at most this much per call
_CR1 = b"CR1"
_MIN_FILE = 12  # index, name length and data length: the least a file entry takes
_MAX_NAME = 1024  # bytes of a name read (UE's are at most 260 characters); the rest is skipped, never decoded


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One file of a crash archive: its name (without a path) and its bytes."""

    name: str
    data: bytes


def read_archive(body: bytes, limit: int, max_files: int) -> list[ArchiveFile]:
    """The files in a crash archive; 413 past `limit` decompressed bytes or `max_files` files, 400 when corrupt."""
    if not body:
        raise HttpError(400, "empty unreal crash report")
    data = _inflate(body, limit)
    reader = _Reader(memoryview(data))
    if data.startswith(_CR1):
        reader.pos = len(_CR1)
        count = _header(reader)
    else:
        if len(data) < 4:
            raise HttpError(400, "unreal crash report is truncated: no header")
        count = struct.unpack_from("<i", data, len(data) - 4)[0]
        _header(reader)  # a placeholder: the real header follows the files
    _check_count(count, len(data) - reader.pos, max_files)
    files = [_file(reader, index) for index in range(count)]
    if not data.startswith(_CR1):
        _header(reader)
    if reader.pos != len(data):
        raise HttpError(400, f"unreal crash report has {len(data) - reader.pos} bytes of trailing data")
    return files


def write_archive(files: Iterable[tuple[str, bytes]], directory: str = "", name: str = "", cr1: bool = False) -> bytes:
    """A crash archive of these files, compressed, as CrashReportClient writes it (for tests and tools)."""
    entries = list(files)
    body = b"".join(
        struct.pack("<i", i) + _fstring(n) + struct.pack("<i", len(d)) + d for i, (n, d) in enumerate(entries)
    )
    size = len(body)
    header = _fstring(directory) + _fstring(name) + struct.pack("<ii", size, len(entries))
    raw = _CR1 + header + body if cr1 else header + body + header
    return zlib.compress(raw)


def _fstring(text: str) -> bytes:
    if text.isascii():
        encoded = text.encode("ascii") + b"\0"
        return struct.pack("<i", len(encoded)) + encoded
    encoded = text.encode("utf-16-le") + b"\0\0"
    return struct.pack("<i", -(len(encoded) // 2)) + encoded


def _inflate(body: bytes, limit: int) -> bytearray:
    """The zlib stream's content, stopping with 413 once past `limit` bytes (bytes after the stream are ignored,
    as Relay ignores them)."""
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = body
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, min(_STEP, limit + 1 - len(out)))
            out += chunk
            if len(out) > limit:
                raise HttpError(
                    413, f"unreal crash report decompresses past limits.max_decompressed_size ({format_size(limit)})"
                )
            if not chunk and len(inflater.unconsumed_tail) == len(pending):
                raise HttpError(400, "unreal crash report is truncated: its zlib stream ends early")
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise HttpError(400, f"unreal crash report is not a valid zlib stream: {exc}") from None
    return out


class _Reader:
    """A cursor over the decompressed archive; every read is bounds-checked."""

    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> memoryview:
        left = len(self.data) - self.pos
        if size < 0 or size > left:
            raise HttpError(400, f"unreal crash report is truncated: {what} needs {size} bytes, {left} are left")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def int32(self, what: str) -> int:
        value: int = struct.unpack("<i", self.take(4, what))[0]
        return value

    def fstring(self, what: str) -> str:
        size = self.int32(f"{what} length")
        # UE writes a string that isn't ANSI as UTF-16, its length (in code units) negated.
        raw = self.take(size if size >= 0 else -2 * size, what)[:_MAX_NAME]
        text = bytes(raw).decode("utf-8" if size >= 0 else "utf-16-le", "replace")
        return text.split("\0", 1)[0]  # a NUL-padded C string: nothing past the terminator is the name


def _header(reader: _Reader) -> int:
    reader.fstring("header directory name")
    reader.fstring("header file name")
    reader.int32("header uncompressed size")
    return reader.int32("header file count")


def _check_count(count: int, left: int, max_files: int) -> None:
    if count < 0 or count > left // _MIN_FILE:
        raise HttpError(400, f"unreal crash report is corrupt: {count} files can't fit in its {left} bytes")
    if count > max_files:
        raise HttpError(413, f"unreal crash report holds {count} files, more than the {max_files} accepted")


def _file(reader: _Reader, index: int) -> ArchiveFile:
    what = f"file {index}"
    reader.int32(f"{what} index")
    name = reader.fstring(f"{what} name")
    size = reader.int32(f"{what} length")
    if size < 0:
        raise HttpError(400, f"unreal crash report is corrupt: {what} ({name!r}) has a negative length")
    return ArchiveFile(name, bytes(reader.take(size, f"{what} ({name!r})")))
