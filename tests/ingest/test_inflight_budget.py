"""Request bodies draw from one in-flight byte budget (limits.max_inflight_bytes), and big bodies are decompressed
off the event loop (issue 15 #3)."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib

from relay.ingest.body import INFLIGHT

from ..conftest import RelayFactory
from ..support import FakeUpstream, auth_header

URL = "/api/42/envelope/"


def _bomb(size: int) -> bytes:
    """A gzip body of ~100 KB that expands to `size` bytes of one envelope (an attachment of zeros)."""
    head = b'{}\n{"type":"attachment","length":%d}\n' % (size - 64)
    stream = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [stream.compress(head)]
    chunk = b"\0" * (1024 * 1024)
    left = size - 64
    while left > 0:
        parts.append(stream.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    parts.append(stream.flush())
    return b"".join(parts)


async def test_parallel_near_limit_bodies_get_503_when_the_budget_is_spent(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """Four parallel 100 KB bodies that expand to 99 MiB each, with a 150 MiB budget: at most one fits at a time,
    the others get 503 with Retry-After; afterwards the budget is whole again, and an ordinary event goes through."""
    client = await make_relay("limits: {max_inflight_bytes: 150MiB}")
    body = _bomb(99 * 1024 * 1024)
    assert len(body) < 200 * 1024
    headers = {**auth_header(), "Content-Encoding": "gzip"}
    responses = await asyncio.gather(*(client.post(URL, data=body, headers=headers) for _ in range(4)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(503) >= 2, statuses
    for resp in responses:
        if resp.status == 503:
            assert resp.headers["Retry-After"] == "2"
            assert "limits.max_inflight_bytes" in (await resp.json())["detail"]
    assert client.app[INFLIGHT].used == 0
    ok = await client.post(URL, data=gzip.compress(b'{}\n{"type":"event"}\n{"message":"m"}\n'), headers=headers)
    assert ok.status == 200


async def test_a_bomb_does_not_hold_the_event_loop(make_relay: RelayFactory) -> None:
    """While a 99 MiB expansion runs (to its 413), the loop keeps turning: its longest stall stays short, and
    /healthz answers."""
    client = await make_relay("limits: {max_decompressed_size: 98MiB}")
    body = _bomb(99 * 1024 * 1024)
    headers = {**auth_header(), "Content-Encoding": "gzip"}
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - started)

    ticking = asyncio.ensure_future(ticker())
    resp = await client.post(URL, data=body, headers=headers)
    assert (await client.get("/healthz")).status == 200
    done.set()
    await ticking
    assert resp.status == 413
    assert worst < 0.2, worst  # (decompressed on the loop, it stalled for the whole expansion)
