"""Compression of upstream bodies (gzip, zstd, none): large ones on a thread that yields the core to the loop."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import threading

import pytest
import zstandard

from relay.forward.compress import INLINE_BELOW, Compressor


async def test_small_and_large_bodies_round_trip() -> None:
    """Both paths produce gzip that decompresses to the body; only the large one starts the thread."""
    compressor = Compressor()
    small, large = b"x" * 100, os.urandom(INLINE_BELOW) + b"y" * INLINE_BELOW
    try:
        assert gzip.decompress((await compressor.compress(small))[0]) == small
        assert compressor._executor is None
        assert gzip.decompress((await compressor.compress(large))[0]) == large
        assert compressor._executor is not None
    finally:
        compressor.close()
        compressor.close()  # idempotent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
async def test_the_thread_runs_at_a_lower_priority_than_the_loop() -> None:
    """The compression thread is niced 10 above the event loop's thread, which keeps its own priority."""
    compressor = Compressor()
    try:
        await compressor.compress(b"z" * INLINE_BELOW)
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


@pytest.mark.parametrize("size", [100, INLINE_BELOW * 2])
async def test_zstd_round_trips_inline_and_on_the_thread(size: int) -> None:
    """zstd bodies decompress to the original, small (inline) and large (thread) alike."""
    compressor = Compressor("zstd", 3)
    body = os.urandom(size // 2) + b"q" * (size // 2)
    try:
        out, encoding = await compressor.compress(body)
        assert encoding == "zstd" and zstandard.ZstdDecompressor().decompressobj().decompress(out) == body
    finally:
        compressor.close()


async def test_gzip_levels_and_small_bodies_as_they_are() -> None:
    """Level 1 is the default; bodies under min_size and `none` go uncompressed, without an encoding."""
    body = b"abc" * 5000
    fast, _ = await Compressor("gzip").compress(body)
    best, _ = await Compressor("gzip", 9).compress(body)
    assert gzip.decompress(fast) == gzip.decompress(best) == body
    assert fast[8] == 4 and best[8] == 2  # gzip's XFL byte: 4 = fastest, 2 = best compression
    assert await Compressor("gzip", min_size=1024).compress(b"tiny") == (b"tiny", None)
    assert await Compressor("none").compress(body) == (body, None)
