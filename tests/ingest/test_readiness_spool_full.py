"""Readiness follows the spool: not ready while it is full (every event would get 503), ready again once drained."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..conftest import RelayFactory, state_of
from ..support import PROJECT, FakeUpstream, Reply, auth_header, envelope_bytes


def _event(n: int) -> bytes:
    return envelope_bytes({}, ({"type": "event"}, b'{"message":"event %d"}' % n))


async def _ready_status(client: object) -> tuple[int, dict[str, object]]:
    resp = await client.get("/readyz")  # type: ignore[attr-defined]
    return resp.status, await resp.json()


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_memory_spool_full_makes_the_relay_unready(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With the queue at its bound (the upstream down), /readyz is 503; after the upstream drains it, 200."""
    upstream.script = [Reply(status=503, headers={"Retry-After": "1"})] * 50
    client = await make_relay("queue: {max_envelopes: 3}")
    state = state_of(client)
    assert (await _ready_status(client))[0] == 200
    for n in range(3):
        resp = await client.post(f"/api/{PROJECT}/envelope/", data=_event(n), headers=auth_header())
        assert resp.status == 200
    status, body = await _ready_status(client)
    assert (status, body["is_healthy"]) == (503, False)
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=_event(9), headers=auth_header())
    assert resp.status == 503  # what the load balancer is now told in advance
    upstream.script = []
    await upstream.wait_for(3, timeout=20)
    await _until(lambda: not state.spool.full)
    assert (await _ready_status(client))[0] == 200


async def test_sqlite_spool_near_max_disk_makes_the_relay_unready(
    make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A disk spool with less room under max_disk than an envelope needs is full: /readyz says 503."""
    upstream.script = [Reply(status=503, headers={"Retry-After": "5"})] * 50
    client = await make_relay(spool=f"{{backend: sqlite, path: {tmp_path}, max_disk: 40KiB}}")
    state = state_of(client)
    big = envelope_bytes({}, ({"type": "event"}, b'{"message":"' + b"x" * 2000 + b'"}'))
    accepted = 0
    while not state.spool.full and accepted < 100:
        resp = await client.post(f"/api/{PROJECT}/envelope/", data=big, headers=auth_header())
        if resp.status != 200:
            break
        accepted += 1
    assert state.spool.full, f"still not full after {accepted} envelopes"
    assert (await _ready_status(client))[0] == 503
