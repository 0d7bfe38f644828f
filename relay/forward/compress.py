"""Gzip for envelope bodies on their way upstream: small ones inline, large ones on a low-priority thread.

zlib releases the GIL, so a worker thread keeps a 1 MB body's 10-20 ms of compression off the event loop.
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

INLINE_BELOW = 64 * 1024  # smaller bodies compress in well under a millisecond: not worth a thread hop
LEVEL = 6
NICE = 10


class Compressor:
    """Gzips bodies; the thread for large ones starts on first use."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def gzip(self, body: bytes) -> bytes:
        """The body gzip-compressed."""
        if len(body) < INLINE_BELOW:
            return gzip.compress(body, compresslevel=LEVEL)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="relay-gzip", initializer=_lower_priority
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, gzip.compress, body, LEVEL)

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
