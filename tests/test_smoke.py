"""A first end-to-end check through the test fixtures."""

from __future__ import annotations

from typing import Any

from .conftest import RelayFactory, state_of
from .support import KEY, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, auth_header, envelope_bytes


async def test_envelope_reaches_upstream_rewritten(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope is forwarded with the upstream's key, project and DSN."""
    client = await make_relay()
    body = envelope_bytes(
        {"event_id": "a" * 32, "dsn": f"http://{KEY}@relay/42", "trace": {"public_key": KEY, "trace_id": "b" * 32}},
        ({"type": "event"}, b'{"message": "hi"}'),
    )
    resp = await client.post("/api/42/envelope/", data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": "a" * 32}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert rec.envelope.headers["dsn"].startswith(f"http://{UPSTREAM_KEY}@")
    assert rec.envelope.headers["trace"]["public_key"] == UPSTREAM_KEY
    assert KEY.encode() not in rec.envelope.serialize()
    state: Any = state_of(client)
    assert state.spool.pending() == 0
