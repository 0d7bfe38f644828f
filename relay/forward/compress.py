"""Compression of envelope bodies on their way upstream (gzip or zstd, at a configurable level): small ones
inline, large ones on a low-priority thread.

The default is gzip at level 1: it costs about a third of level 6's CPU for bodies a few percent larger, and
every Sentry reads it. zstd (Sentry's Relay reads `Content-Encoding: zstd`) is faster still at a better
ratio. Bodies under `compression_min_size` go as they are.

zlib and zstd release the GIL, so a worker thread keeps a 1 MB body's 10-20 ms of compression off the event loop.
The thread still competes for the same core, though (a relay is often pinned to one): at its default
priority the kernel shares the core evenly between it and the event loop's thread, and small requests
wait out its time slices. Linux schedules threads one by one, so this one alone runs at nice 10.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import zstandard

INLINE_BELOW = 64 * 1024  # smaller bodies compress in well under a millisecond: not worth a thread hop
DEFAULT_LEVELS = {"gzip": 1, "zstd": 3}
NICE = 10


class Compressor:
    """Compresses bodies with one encoding and level; the thread for large ones starts on first use."""

    def __init__(self, encoding: str = "gzip", level: int = 0, min_size: int = 0) -> None:
        self.encoding = encoding
        self._level = level or DEFAULT_LEVELS.get(encoding, 1)
        self._min_size = min_size
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()

    async def compress(self, body: bytes) -> tuple[bytes, str | None]:
        """The body as it is sent, and its Content-Encoding (None: sent as it is)."""
        if self.encoding == "none" or len(body) < self._min_size:
            return body, None
        if len(body) < INLINE_BELOW:
            return self._encode(body), self.encoding
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="relay-compress", initializer=_lower_priority
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, body), self.encoding

    def _encode(self, body: bytes) -> bytes:
        if self.encoding == "zstd":
            compressor = getattr(self._local, "zstd", None)  # one per thread: a ZstdCompressor isn't shareable
            if compressor is None:
                compressor = self._local.zstd = zstandard.ZstdCompressor(level=self._level)
            return bytes(compressor.compress(body))
        return gzip.compress(body, compresslevel=min(self._level, 9))

    def close(self) -> None:
        """Stop the thread (it finishes what it has); idempotent."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


def _lower_priority() -> None:
    """Nice this thread only (on Linux a thread id is a valid PRIO_PROCESS target; elsewhere, leave it)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


__all__ = ["INLINE_BELOW", "Compressor"]
