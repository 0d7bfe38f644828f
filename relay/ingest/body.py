"""Reading request bodies within limits, and undoing Content-Encoding without decompression bombs."""

from __future__ import annotations

import io
import zlib

import brotli
import zstandard
from aiohttp import web

from ..config import LimitsConfig
from ..errors import HttpError, RelayError
from ..units import format_size

_CHUNK = 64 * 1024


class ClientDisconnected(RelayError):
    """The client closed the connection before sending the whole body: nothing to answer, and not our error."""

    def __init__(self, received: int, expected: int | None) -> None:
        super().__init__(f"client disconnected after {received} of {expected or 'unknown'} body bytes")
        self.received = received
        self.expected = expected


async def read_body(request: web.Request, limits: LimitsConfig) -> bytes:
    """The request body, decoded; 413 past `max_body_size` or `max_decompressed_size`, 415 for unknown encodings,
    ClientDisconnected if the client goes away before sending all of it."""
    limit = limits.max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(
            413, f"request body of {request.content_length} bytes exceeds limits.max_body_size ({format_size(limit)})"
        )
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise HttpError(413, f"request body exceeds limits.max_body_size ({format_size(limit)})")
            chunks.append(chunk)
    except ConnectionError:  # aiohttp's "Connection lost" (or a reset) while the body was still arriving
        raise ClientDisconnected(total, request.content_length) from None
    data = b"".join(chunks)
    encodings = [
        e.strip().lower()
        for e in request.headers.get("Content-Encoding", "").split(",")
        if e.strip() and e.strip().lower() not in ("identity", "utf-8")
    ]
    for encoding in reversed(encodings):
        data = decompress(encoding, data, limits.max_decompressed_size)
    return data


def decompress(encoding: str, data: bytes, limit: int) -> bytes:
    """Decode one content coding, stopping with 413 once output passes `limit` bytes."""
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(data, limit, zlib.MAX_WBITS | 16)
        if encoding == "deflate":
            try:
                return _inflate(data, limit, zlib.MAX_WBITS)
            except zlib.error:  # some clients send raw deflate without the zlib wrapper
                return _inflate(data, limit, -zlib.MAX_WBITS)
        if encoding == "br":
            return _unbrotli(data, limit)
        if encoding == "zstd":
            return _unzstd(data, limit)
    except (zlib.error, brotli.error, zstandard.ZstdError, EOFError) as exc:
        raise HttpError(400, f"body is not valid {encoding}: {exc}") from None
    raise HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate, br or zstd")


def _too_big(limit: int) -> HttpError:
    return HttpError(413, f"decompressed body exceeds limits.max_decompressed_size ({format_size(limit)})")


def _inflate(data: bytes, limit: int, wbits: int) -> bytes:
    out = bytearray()
    pending = data
    while pending:
        inflater = zlib.decompressobj(wbits)
        while pending:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_big(limit)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
            if not pending:
                out += inflater.flush(limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_big(limit)
                if not inflater.eof:
                    raise zlib.error("truncated stream")
        pending = inflater.unused_data if wbits & 16 else b""  # gzip allows concatenated members
    return bytes(out)


def _unbrotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray(decoder.process(data, output_buffer_limit=limit + 1))
    while len(out) <= limit and not decoder.can_accept_more_data() and not decoder.is_finished():
        out += decoder.process(b"", output_buffer_limit=limit + 1 - len(out))
    if len(out) > limit:
        raise _too_big(limit)
    if not decoder.is_finished():
        raise brotli.error("truncated stream")
    return bytes(out)


def _unzstd(data: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(min(_CHUNK * 4, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
        if len(out) > limit:
            raise _too_big(limit)
    return bytes(out)
