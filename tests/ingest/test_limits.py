"""Size limits: body, envelope, event and attachment sizes are each answered with 413 and a detail."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from ..conftest import RelayFactory, state_of
from ..support import PROJECT, FakeUpstream, auth_header, envelope_bytes, outcome_totals, received_total

EVENT_ID = "1234567890abcdef1234567890abcdef"
URL = f"/api/{PROJECT}/envelope/"


def _event(size: int = 0, kind: str = "event") -> bytes:
    payload = orjson.dumps({"message": "m" * size})
    return envelope_bytes({"event_id": EVENT_ID}, ({"type": kind}, payload))


def _sized(total: int) -> bytes:
    """An envelope of exactly `total` bytes (one attachment)."""
    payload = b"a" * (total - len(envelope_bytes({}, ({"type": "attachment"}, b""))))
    while len(envelope_bytes({}, ({"type": "attachment"}, payload))) > total:
        payload = payload[:-1]
    body = envelope_bytes({}, ({"type": "attachment"}, payload))
    assert len(body) == total
    return body


async def _chunks(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _only_forwarded(client: TestClient[Any, Any], upstream: FakeUpstream) -> None:
    """Send one valid event and check it is the only envelope the upstream ever got."""
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert len(upstream.received) == 1
    assert [i.type for i in upstream.received[0].envelope.items] == ["event"]


async def test_body_over_limit_by_content_length(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A Content-Length over max_body_size is 413 with a detail."""
    client = await make_relay("limits: {max_body_size: 4KiB}")
    resp = await client.post(URL, data=_sized(4 * 1024 + 1), headers=auth_header())
    assert resp.status == 413
    detail = (await resp.json())["detail"]
    assert "max_body_size (4KiB)" in detail
    assert "4097" in detail
    await _only_forwarded(client, upstream)


async def test_body_at_limit_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A body of exactly max_body_size is accepted."""
    client = await make_relay("limits: {max_body_size: 4KiB}")
    resp = await client.post(URL, data=_sized(4 * 1024), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {}
    await upstream.wait_for(1)


async def test_chunked_body_over_limit(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A chunked body (no Content-Length) passing max_body_size is 413 with a detail."""
    client = await make_relay("limits: {max_body_size: 4KiB}")
    resp = await client.post(URL, data=_chunks(_sized(16 * 1024)), headers=auth_header())
    assert resp.status == 413
    assert "max_body_size (4KiB)" in (await resp.json())["detail"]
    await _only_forwarded(client, upstream)


async def test_chunked_body_under_limit_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A chunked body within max_body_size is accepted."""
    client = await make_relay("limits: {max_body_size: 4KiB}")
    resp = await client.post(URL, data=_chunks(_event(), 7), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_body_limit_applies_to_compressed_bytes(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """max_body_size counts bytes on the wire: a small gzip body that inflates past it is fine."""
    client = await make_relay("limits: {max_body_size: 4KiB}")
    body = _sized(64 * 1024)
    compressed = gzip.compress(body)
    assert len(compressed) < 4 * 1024
    resp = await client.post(URL, data=compressed, headers={**auth_header(), "Content-Encoding": "gzip"})
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_envelope_over_limit(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A decoded envelope over max_envelope_size is 413 with a detail; at the limit it is accepted."""
    client = await make_relay("limits: {max_envelope_size: 8KiB}")
    resp = await client.post(URL, data=_sized(8 * 1024 + 1), headers=auth_header())
    assert resp.status == 413
    assert "max_envelope_size" in (await resp.json())["detail"]
    resp = await client.post(URL, data=_sized(8 * 1024), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_envelope_over_limit_after_decompression(make_relay: RelayFactory) -> None:
    """max_envelope_size applies to the decompressed envelope."""
    client = await make_relay("limits: {max_envelope_size: 8KiB}")
    compressed = gzip.compress(_sized(32 * 1024))
    assert len(compressed) < 8 * 1024
    resp = await client.post(URL, data=compressed, headers={**auth_header(), "Content-Encoding": "gzip"})
    assert resp.status == 413
    assert "max_envelope_size" in (await resp.json())["detail"]


async def test_store_envelope_over_envelope_limit(make_relay: RelayFactory) -> None:
    """An envelope posted to store is held to max_envelope_size too."""
    client = await make_relay("limits: {max_envelope_size: 8KiB}")
    headers = {**auth_header(), "Content-Type": "application/x-sentry-envelope"}
    resp = await client.post(f"/api/{PROJECT}/store/", data=_sized(9 * 1024), headers=headers)
    assert resp.status == 413
    assert "max_envelope_size" in (await resp.json())["detail"]


@pytest.mark.parametrize("kind", ["event", "transaction", "feedback"])
async def test_event_item_over_limit(make_relay: RelayFactory, upstream: FakeUpstream, kind: str) -> None:
    """An event-like item over max_event_size is 413 with a detail naming the item and limit."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    resp = await client.post(URL, data=_event(2000, kind), headers=auth_header())
    assert resp.status == 413
    detail = (await resp.json())["detail"]
    assert f"item 0 ({kind})" in detail
    assert "max_event_size (1KiB)" in detail
    await _only_forwarded(client, upstream)


async def test_event_item_at_limit_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An event payload of exactly max_event_size is accepted."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    payload = orjson.dumps({"message": "m" * (1024 - len(b'{"message":""}'))})
    assert len(payload) == 1024
    resp = await client.post(
        URL, data=envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, payload)), headers=auth_header()
    )
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_attachment_not_held_to_event_limit(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """max_event_size does not apply to attachments."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"x" * 4096))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_attachment_over_limit(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An attachment over max_attachment_size is 413 with a detail; at the limit it is accepted."""
    client = await make_relay("limits: {max_attachment_size: 2KiB}")
    too_big = envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"x" * 2049))
    resp = await client.post(URL, data=too_big, headers=auth_header())
    assert resp.status == 413
    detail = (await resp.json())["detail"]
    assert "item 1 (attachment)" in detail
    assert "max_attachment_size (2KiB)" in detail
    ok = envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"x" * 2048))
    resp = await client.post(URL, data=ok, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert len(upstream.received) == 1
    assert len(upstream.received[0].envelope.items[1].payload) == 2048


async def test_too_large_items_counted_as_invalid(make_relay: RelayFactory) -> None:
    """Every item of an envelope refused for size gets an `invalid/too_large` outcome."""
    client = await make_relay("limits: {max_attachment_size: 1KiB}")
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"x" * 2048))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 413
    state = state_of(client)
    totals = outcome_totals(state)
    assert totals[("invalid", "too_large", "error")] == 1
    assert totals[("invalid", "too_large", "attachment")] == 1
    assert received_total(state) == 2


async def test_limit_errors_carry_cors_headers(make_relay: RelayFactory) -> None:
    """A 413 answer still lets a browser read it (CORS headers present)."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    headers = {**auth_header(), "Origin": "https://app.example.com"}
    resp = await client.post(URL, data=_event(2000), headers=headers)
    assert resp.status == 413
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "detail" in await resp.json()
