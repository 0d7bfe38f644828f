"""Reading request bodies within limits, and undoing Content-Encoding without decompression bombs.

Every body's bytes, as read and as decompressed, are drawn from one budget shared by all requests
(`limits.max_inflight_bytes`, InflightBudget) and given back when the request is answered: when it is spent the
request gets 503 with Retry-After, so parallel near-limit bodies can't take the process past its memory limit.
Decompression of a body over 64 KiB, or of one whose output passes 1 MiB, runs on a worker thread, so a bomb
doesn't hold the event loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import zstandard
from aiohttp import web

from ..config import LimitsConfig
from ..errors import HttpError, RelayError, Unavailable
from ..logs import log_event
from ..units import format_size

logger = logging.getLogger("relay.http")

_CHUNK = 64 * 1024
_THREADED = 64 * 1024  # compressed bodies past this are decompressed off the event loop
_INLINE_OUTPUT = 1024**2  # ... and smaller ones too, once their output passes this (about 2 ms of inflating)
_STEP = 1024 * 1024  # decompressed output is metered in steps of this


class Busy(Unavailable):
    """The in-flight budget is spent: 503 with Retry-After (not an error of the relay's: not logged as one)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            f"too many request bytes in flight (limits.max_inflight_bytes, {format_size(limit)}): retry shortly",
            {"Retry-After": "2"},
        )


class InflightBudget:
    """Bytes of request bodies held at once, across requests and threads; logs a spent budget once per episode."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()
        self._spent = False

    def take(self, size: int) -> None:
        """Draw `size` bytes, or raise Busy."""
        with self._lock:
            if self.used + size > self.limit:
                first, self._spent = not self._spent, True
            else:
                self.used += size
                return
        if first:
            log_event(logger, logging.WARNING, "in-flight byte budget spent, refusing with 503", limit=self.limit)
        raise Busy(self.limit)

    def give(self, size: int) -> None:
        """Return `size` bytes."""
        with self._lock:
            self.used -= size
            if self._spent and self.used <= self.limit // 2:
                self._spent = False


INFLIGHT = web.AppKey("relay_inflight", InflightBudget)
BODY_TIMEOUT = web.AppKey("relay_body_timeout", float)  # listen.body_timeout: seconds without a body byte


class BodyTimeout(HttpError):
    """The body stopped arriving (listen.body_timeout): 408, and the connection is closed (the middleware)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(408, f"no request body bytes for {timeout:g}s (listen.body_timeout)")


# The bytes a request drew (request[_HELD]), given back once it is answered.
_HELD: Any = web.RequestKey("relay_inflight_held", int) if hasattr(web, "RequestKey") else "relay_inflight_held"


def release(request: web.BaseRequest) -> None:
    """Give back what this request drew from the in-flight budget (the middleware calls it after answering)."""
    budget = request.app.get(INFLIGHT) if isinstance(request, web.Request) else None
    held = request.get(_HELD, 0)
    if budget is not None and held:
        budget.give(held)
        request[_HELD] = 0


def _meter(request: web.Request) -> Callable[[int], None]:
    """`draw(n)`: take n more bytes for this request from the app's budget (thread-safe; no budget: free)."""
    budget = request.app.get(INFLIGHT)
    lock = threading.Lock()

    def draw(size: int) -> None:
        if budget is None or size <= 0:
            return
        budget.take(size)
        with lock:
            request[_HELD] = request.get(_HELD, 0) + size

    return draw


class ClientDisconnected(RelayError):
    """The client closed the connection before sending the whole body: nothing to answer, and not our error."""

    def __init__(self, received: int, expected: int | None) -> None:
        super().__init__(f"client disconnected after {received} of {expected or 'unknown'} body bytes")
        self.received = received
        self.expected = expected


async def read_body(request: web.Request, limits: LimitsConfig) -> bytes:
    """The request body, decoded; 413 past `max_body_size` or `max_decompressed_size`, 415 for unknown encodings,
    408 (BodyTimeout) once it stops arriving for `listen.body_timeout`, ClientDisconnected if the client goes away
    before sending all of it."""
    limit = limits.max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(
            413, f"request body of {request.content_length} bytes exceeds limits.max_body_size ({format_size(limit)})"
        )
    chunks: list[bytes] = []
    total = 0
    draw = _meter(request)
    timeout = request.app.get(BODY_TIMEOUT)
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(request.content.read(_CHUNK), timeout)
            except TimeoutError:
                raise BodyTimeout(timeout or 0.0) from None
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise HttpError(413, f"request body exceeds limits.max_body_size ({format_size(limit)})")
            draw(len(chunk))
            chunks.append(chunk)
    except ConnectionError:  # aiohttp's "Connection lost" (or a reset) while the body was still arriving
        raise ClientDisconnected(total, request.content_length) from None
    data = b"".join(chunks)
    encodings = [
        e.strip().lower()
        for e in request.headers.get("Content-Encoding", "").split(",")
        if e.strip() and e.strip().lower() not in ("identity", "utf-8")
    ]
    limit = limits.max_decompressed_size
    for encoding in reversed(encodings):
        if len(data) > _THREADED:
            data = await asyncio.to_thread(decompress, encoding, data, limit, draw)
            continue
        # A small body decompresses here while its output stays small (the usual SDK envelope, no thread hop);
        # one that expands past _INLINE_OUTPUT (18 KB of gzip can be 10 MB) starts again on a thread.
        try:
            data = decompress(encoding, data, min(limit, _INLINE_OUTPUT), draw)
        except HttpError as exc:
            if exc.status != 413 or limit <= _INLINE_OUTPUT:
                raise
            data = await asyncio.to_thread(decompress, encoding, data, limit, draw)
    return data


def decompress(encoding: str, data: bytes, limit: int, draw: Callable[[int], None] | None = None) -> bytes:
    """Decode one content coding, stopping with 413 once output passes `limit` bytes; `draw(n)` is told of each
    step of output as it grows (the in-flight budget), and may raise to stop it."""
    draw = draw or _free
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(data, limit, zlib.MAX_WBITS | 16, draw)
        if encoding == "deflate":
            try:
                return _inflate(data, limit, zlib.MAX_WBITS, draw)
            except zlib.error:  # some clients send raw deflate without the zlib wrapper
                return _inflate(data, limit, -zlib.MAX_WBITS, draw)
        if encoding == "br":
            return _unbrotli(data, limit, draw)
        if encoding == "zstd":
            return _unzstd(data, limit, draw)
    except (zlib.error, brotli.error, zstandard.ZstdError, EOFError) as exc:
        raise HttpError(400, f"body is not valid {encoding}: {exc}") from None
    raise HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate, br or zstd")


def _too_big(limit: int) -> HttpError:
    return HttpError(413, f"decompressed body exceeds limits.max_decompressed_size ({format_size(limit)})")


def _free(size: int) -> None:
    """No budget to draw from."""


def _inflate(data: bytes, limit: int, wbits: int, draw: Callable[[int], None]) -> bytes:
    out = bytearray()
    pending = data
    while pending:
        inflater = zlib.decompressobj(wbits)
        while pending:
            before = len(out)
            out += inflater.decompress(pending, min(_STEP, limit + 1 - len(out)))
            if len(out) > limit:
                raise _too_big(limit)
            draw(len(out) - before)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
            if not pending:
                before = len(out)
                out += inflater.flush(limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_big(limit)
                draw(len(out) - before)
                if not inflater.eof:
                    raise zlib.error("truncated stream")
        pending = inflater.unused_data if wbits & 16 else b""  # gzip allows concatenated members
    return bytes(out)


def _unbrotli(data: bytes, limit: int, draw: Callable[[int], None]) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray(decoder.process(data, output_buffer_limit=min(_STEP, limit + 1)))
    draw(len(out))
    # (with an output limit, the decoder keeps the input it hasn't decoded yet: empty calls drain it in steps)
    while len(out) <= limit and not decoder.is_finished():
        before = len(out)
        out += decoder.process(b"", output_buffer_limit=min(_STEP, limit + 1 - len(out)))
        if len(out) == before:
            break  # no progress without more input: a truncated stream
        draw(len(out) - before)
    if len(out) > limit:
        raise _too_big(limit)
    if not decoder.is_finished():
        raise brotli.error("truncated stream")
    return bytes(out)


def _unzstd(data: bytes, limit: int, draw: Callable[[int], None]) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(min(_CHUNK * 4, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
        if len(out) > limit:
            raise _too_big(limit)
        draw(len(chunk))
    return bytes(out)
