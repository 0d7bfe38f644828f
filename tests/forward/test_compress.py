"""Gzip for upstream bodies: large ones on a thread that yields the core to the event loop."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import threading

import pytest

from relay.forward.compress import INLINE_BELOW, Compressor


async def test_small_and_large_bodies_round_trip() -> None:
    """Both paths produce gzip that decompresses to the body; only the large one starts the thread."""
    compressor = Compressor()
    small, large = b"x" * 100, os.urandom(INLINE_BELOW) + b"y" * INLINE_BELOW
    try:
        assert gzip.decompress(await compressor.gzip(small)) == small
        assert compressor._executor is None
        assert gzip.decompress(await compressor.gzip(large)) == large
        assert compressor._executor is not None
    finally:
        compressor.close()
        compressor.close()  # idempotent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
async def test_the_thread_runs_at_a_lower_priority_than_the_loop() -> None:
    """The compression thread is niced 10 above the event loop's thread, which keeps its own priority."""
    compressor = Compressor()
    try:
        await compressor.gzip(b"z" * INLINE_BELOW)
        assert compressor._executor is not None
        loop = asyncio.get_running_loop()
        theirs = await loop.run_in_executor(
            compressor._executor, lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert theirs == min(19, ours + 10)
        assert os.getpriority(os.PRIO_PROCESS, 0) == ours
    finally:
        compressor.close()
