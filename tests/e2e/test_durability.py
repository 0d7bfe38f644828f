"""The SQLite spool across process deaths: what a relay acknowledged reaches the upstream after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from ..support import FakeUpstream, Reply
from . import test_process
from .test_process import RelayProcess, config_yaml, event_envelope, free_port, post_envelope

start_relay = test_process.start_relay  # the fixture that runs `python -m relay run` processes in tmp_path


@contextlib.asynccontextmanager
async def upstream_on(port: int, fake: FakeUpstream) -> AsyncIterator[FakeUpstream]:
    """Serve `fake` on a fixed local port for the duration of the block."""
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


async def post_events(relay: RelayProcess, count: int) -> list[str]:
    """Post `count` distinct events, each acknowledged with 200; return their ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        for n, event_id in enumerate(ids):
            await post_envelope(session, relay, event_envelope(event_id, f"durable {n}"))
    return ids


async def wait_ready(relay: RelayProcess) -> None:
    """Wait until the relay process answers /readyz with 200."""
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)


def delivered_ids(upstream: FakeUpstream) -> list[str]:
    """Event ids the upstream accepted, in arrival order."""
    return [str(r.envelope.event_id) for r in upstream.received]


async def test_sigkill_loses_no_acknowledged_event(start_relay: Any) -> None:
    """Upstream unreachable, 20 events acknowledged, SIGKILL; a restart with the upstream up delivers all 20."""
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"  # nothing listens there yet
    port = free_port()
    first = await start_relay(config_yaml(port, upstream_url), port)
    acked = await post_events(first, 20)
    code, _ = await first.stop(signal.SIGKILL, timeout=10)
    assert code == -signal.SIGKILL
    assert first.log("relay stopped") is None

    async with upstream_on(upstream_port, FakeUpstream()) as upstream:
        second = await start_relay(config_yaml(port, upstream_url), port)
        await wait_ready(second)
        recovered = await second.wait_log("spool recovered")
        assert recovered["entries"] == 20
        await upstream.wait_for(20, timeout=15)
        assert set(delivered_ids(upstream)) == set(acked)
        code, _ = await second.stop(signal.SIGTERM, timeout=15)
    assert code == 0, "\n".join(second.raw)
    stopped = second.log("relay stopped")
    assert stopped is not None
    assert stopped["left_in_spool"] == 0
    assert stopped["lost_envelopes"] == 0


async def test_sigkill_during_delivery_loses_nothing(start_relay: Any, upstream: FakeUpstream) -> None:
    """SIGKILL while a slow upstream receives: after a restart every acknowledged id arrives (duplicates allowed)."""
    upstream.script = [Reply(200, delay=0.3) for _ in range(5)]
    port = free_port()
    first = await start_relay(config_yaml(port, upstream.url), port)
    acked = await post_events(first, 10)
    deadline = asyncio.get_running_loop().time() + 5
    while not upstream.attempts:  # at least one send is in flight
        assert asyncio.get_running_loop().time() < deadline, "the relay never tried the upstream"
        await asyncio.sleep(0.01)
    await first.stop(signal.SIGKILL, timeout=10)

    second = await start_relay(config_yaml(port, upstream.url), port)
    await wait_ready(second)
    deadline = asyncio.get_running_loop().time() + 15
    while not set(acked) <= set(delivered_ids(upstream)):
        assert asyncio.get_running_loop().time() < deadline, (acked, delivered_ids(upstream))
        await asyncio.sleep(0.02)
    code, _ = await second.stop(signal.SIGTERM, timeout=15)
    assert code == 0, "\n".join(second.raw)
    assert second.log("relay stopped")["left_in_spool"] == 0  # type: ignore[index]


async def test_sigterm_keeps_undelivered_entries_for_the_next_start(start_relay: Any, upstream: FakeUpstream) -> None:
    """SIGTERM while the upstream answers 503: exit in time keeping all 15 entries; a restart sends them."""
    upstream.script = [Reply(503) for _ in range(100_000)]
    port = free_port()
    first = await start_relay(config_yaml(port, upstream.url, shutdown_timeout="2s"), port)
    acked = await post_events(first, 15)
    code, took = await first.stop(signal.SIGTERM, timeout=15)
    assert code == 0, "\n".join(first.raw)
    assert took < 2 + 2.5, f"shutdown took {took:.1f}s with shutdown_timeout 2s"
    stopped = first.log("relay stopped")
    assert stopped is not None, first.raw
    assert stopped["drained"] is False
    assert stopped["pending_at_shutdown"] == 15
    assert stopped["left_in_spool"] == 15
    assert stopped["lost_envelopes"] == 0
    assert upstream.received == []

    upstream.script.clear()
    second = await start_relay(config_yaml(port, upstream.url), port)
    await wait_ready(second)
    assert (await second.wait_log("spool recovered"))["entries"] == 15
    await upstream.wait_for(15, timeout=15)
    assert sorted(delivered_ids(upstream)) == sorted(acked)
    code, _ = await second.stop(signal.SIGTERM, timeout=15)
    assert code == 0
    stopped = second.log("relay stopped")
    assert stopped is not None
    assert stopped["left_in_spool"] == 0
    assert stopped["drained"] is True
