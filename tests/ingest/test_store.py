"""The legacy `/api/<project>/store/` endpoint: one JSON event, forwarded as an envelope."""

from __future__ import annotations

import base64
import gzip
import re
import zlib

import orjson
import pytest

from ..conftest import RelayFactory
from ..support import KEY, OTHER_KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, auth_header, envelope_bytes

EVENT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
URL = f"/api/{PROJECT}/store/"


async def test_json_event_forwarded_as_event_item(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A JSON event becomes an envelope with one `event` item; the answer is its id."""
    client = await make_relay()
    event = {"event_id": EVENT_ID, "message": "legacy", "level": "error", "platform": "python"}
    resp = await client.post(
        URL, data=orjson.dumps(event), headers={**auth_header(), "Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert rec.envelope.event_id == EVENT_ID
    assert [i.type for i in rec.envelope.items] == ["event"]
    assert rec.envelope.items[0].json() == event


async def test_store_without_trailing_slash(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`/api/<id>/store` without the slash is the same endpoint."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/store", data=orjson.dumps({"event_id": EVENT_ID}), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_transaction_forwarded_as_transaction_item(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An event with `type: transaction` becomes a `transaction` item."""
    client = await make_relay()
    event = {"event_id": EVENT_ID, "type": "transaction", "transaction": "/a", "spans": []}
    resp = await client.post(URL, data=orjson.dumps(event), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    items = upstream.received[0].envelope.items
    assert [i.type for i in items] == ["transaction"]
    assert items[0].json() == event


async def test_missing_event_id_generated_and_inserted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Without an event_id one is generated, answered, and inserted into the forwarded payload."""
    client = await make_relay()
    resp = await client.post(URL, data=b'{"message":"no id"}', headers=auth_header())
    assert resp.status == 200
    event_id = (await resp.json())["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", event_id)
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert envelope.event_id == event_id
    assert envelope.items[0].json() == {"message": "no id", "event_id": event_id}


async def test_generated_ids_are_unique(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Each id-less event gets its own id."""
    client = await make_relay()
    ids = set()
    for _ in range(3):
        resp = await client.post(URL, data=b'{"message":"x"}', headers=auth_header())
        assert resp.status == 200
        ids.add((await resp.json())["id"])
    assert len(ids) == 3
    await upstream.wait_for(3)


async def test_uuid_event_id_normalized(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A dashed, upper-case UUID event_id is answered as 32 lower-case hex characters."""
    client = await make_relay()
    dashed = "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
    resp = await client.post(URL, data=orjson.dumps({"event_id": dashed}), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.event_id == EVENT_ID


async def test_base64_body(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A base64-encoded JSON body is decoded."""
    client = await make_relay()
    event = {"event_id": EVENT_ID, "message": "b64"}
    resp = await client.post(URL, data=base64.b64encode(orjson.dumps(event)), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == event


async def test_base64_zlib_body(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A base64-encoded, zlib-compressed JSON body (old SDKs) is decoded."""
    client = await make_relay()
    event = {"event_id": EVENT_ID, "message": "zlib", "extra": {"k": "v" * 200}}
    body = base64.b64encode(zlib.compress(orjson.dumps(event)))
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Type": "application/octet-stream"})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == event


async def test_body_with_surrounding_whitespace(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Leading and trailing whitespace around the JSON is ignored."""
    client = await make_relay()
    resp = await client.post(URL, data=b'\n  {"event_id":"%s"}\n' % EVENT_ID.encode(), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json and not base64 !!!",
        b"{broken json",
        b"[1, 2, 3]",
        base64.b64encode(b"neither json nor zlib"),
        base64.b64encode(zlib.compress(b"[1,2]")),
        base64.b64encode(zlib.compress(b"{not json")),
    ],
    ids=["empty", "garbage", "broken-json", "json-array", "b64-garbage", "b64-zlib-array", "b64-zlib-broken"],
)
async def test_invalid_body_is_400(make_relay: RelayFactory, upstream: FakeUpstream, body: bytes) -> None:
    """A body that is not a JSON object (plain, base64 or base64+zlib) is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 400
    assert (await resp.json())["detail"]


async def test_event_over_max_event_size_is_413(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A store event bigger than limits.max_event_size is 413 with a detail."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    resp = await client.post(URL, data=orjson.dumps({"message": "x" * 2000}), headers=auth_header())
    assert resp.status == 413
    assert "max_event_size" in (await resp.json())["detail"]


async def test_base64_zlib_bomb_is_refused(make_relay: RelayFactory) -> None:
    """A base64+zlib body inflating far past max_event_size is refused with 413, not inflated."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    inner = b'{"message":"' + b"a" * (50 * 1024 * 1024) + b'"}'
    body = base64.b64encode(zlib.compress(inner, 9))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 413
    assert "detail" in await resp.json()


async def test_envelope_content_type(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With Content-Type application/x-sentry-envelope, the store body is parsed as an envelope."""
    client = await make_relay()
    body = envelope_bytes(
        {"event_id": EVENT_ID},
        ({"type": "event"}, b'{"message":"env"}'),
        ({"type": "attachment", "filename": "a.txt"}, b"attached"),
    )
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Type": "application/x-sentry-envelope"})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    items = upstream.received[0].envelope.items
    assert [(i.type, i.payload) for i in items] == [("event", b'{"message":"env"}'), ("attachment", b"attached")]


async def test_envelope_content_type_invalid_is_400(make_relay: RelayFactory) -> None:
    """A malformed envelope posted to store with the envelope content type is 400."""
    client = await make_relay()
    resp = await client.post(
        URL, data=b"{}\n[]\n", headers={**auth_header(), "Content-Type": "application/x-sentry-envelope"}
    )
    assert resp.status == 400
    assert "invalid envelope" in (await resp.json())["detail"]


async def test_envelope_content_type_dsn_mismatch_is_400(make_relay: RelayFactory) -> None:
    """An envelope posted to store must agree with the request's key, as on the envelope endpoint."""
    client = await make_relay()
    body = envelope_bytes(
        {"event_id": EVENT_ID, "dsn": f"https://{OTHER_KEY}@relay.example.com/{PROJECT}"},
        ({"type": "event"}, b"{}"),
    )
    headers = {**auth_header(KEY), "Content-Type": "application/x-sentry-envelope"}
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "dsn" in (await resp.json())["detail"]


async def test_invalid_project_on_store_is_400(make_relay: RelayFactory) -> None:
    """A non-numeric project id on store is 400."""
    client = await make_relay()
    resp = await client.post("/api/x/store/", data=b"{}", headers=auth_header())
    assert resp.status == 400
    assert "invalid project id" in (await resp.json())["detail"]


async def test_gzip_store_body(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A gzip Content-Encoding on store is undone before the JSON is read."""
    client = await make_relay()
    body = gzip.compress(orjson.dumps({"event_id": EVENT_ID, "message": "gz"}))
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Encoding": "gzip"})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json()["message"] == "gz"
