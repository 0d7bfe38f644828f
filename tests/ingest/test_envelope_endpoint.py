"""The `/api/<project>/envelope/` endpoint: acceptance, answers, forwarding and validation."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from relay.envelope import Envelope, Item
from relay.ingest import RelayState

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    auth_header,
    envelope_bytes,
    outcome_totals,
)

EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
URL = f"/api/{PROJECT}/envelope/"

SDK_ITEMS: list[tuple[str, bytes]] = [
    ("event", b'{"message":"hello","level":"error"}'),
    ("transaction", b'{"type":"transaction","transaction":"/index","spans":[]}'),
    ("attachment", b"\x00\x01binary\nwith newlines\n\xff"),
    ("session", b'{"sid":"abc","status":"ok","init":true}'),
    ("sessions", b'{"aggregates":[{"started":"2024-01-01T00:00:00Z","exited":3}]}'),
    ("client_report", b'{"timestamp":1700000000,"discarded_events":[]}'),
    ("check_in", b'{"check_in_id":"a","monitor_slug":"cron","status":"ok"}'),
    ("log", b'{"items":[{"level":"info","body":"hi"}]}'),
    ("span", b'{"span_id":"b","trace_id":"c"}'),
    ("profile", b'{"version":"1","samples":[]}'),
    ("replay_event", b'{"type":"replay_event","replay_id":"d"}'),
    ("replay_recording", b'{"segment_id":0}\n\x78\x9c\x03\x00\x00\x00\x00\x01'),
    ("user_report", b'{"event_id":"e","name":"n","comments":"c"}'),
    ("feedback", b'{"contexts":{"feedback":{"message":"m"}}}'),
]


def _event(event_id: str = EVENT_ID, message: str = "hi") -> bytes:
    return envelope_bytes({"event_id": event_id}, ({"type": "event"}, orjson.dumps({"message": message})))


async def test_event_forwarded_and_answered_with_id(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An event envelope answers 200 {"id": event_id} and reaches the upstream project with its key."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert "sentry_client=test/1.0" in rec.headers["X-Sentry-Auth"]
    assert rec.headers["Content-Type"] == "application/x-sentry-envelope"
    assert rec.envelope.event_id == EVENT_ID
    assert [i.type for i in rec.envelope.items] == ["event"]
    assert rec.envelope.items[0].json() == {"message": "hi"}


async def test_path_without_trailing_slash(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`/api/<id>/envelope` without the slash is the same endpoint."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/envelope", data=_event(), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_event_id_taken_from_event_payload(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Without an envelope event_id, the answer carries the event payload's event_id."""
    client = await make_relay()
    body = envelope_bytes({}, ({"type": "event"}, orjson.dumps({"event_id": EVENT_ID, "message": "x"})))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_answer_is_empty_object_without_event(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope with no event (sessions only) is answered with {}."""
    client = await make_relay()
    body = envelope_bytes({"sent_at": "2024-01-01T00:00:00Z"}, ({"type": "session"}, b'{"sid":"s","status":"ok"}'))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {}
    await upstream.wait_for(1)
    assert [i.type for i in upstream.received[0].envelope.items] == ["session"]


async def test_transaction_answered_with_id(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A transaction envelope is answered with its event id."""
    client = await make_relay()
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "transaction"}, b'{"type":"transaction","spans":[]}'))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


@pytest.mark.parametrize(("item_type", "payload"), SDK_ITEMS, ids=[t for t, _ in SDK_ITEMS])
async def test_every_sdk_item_type_forwarded(
    make_relay: RelayFactory, upstream: FakeUpstream, item_type: str, payload: bytes
) -> None:
    """Each item type SDKs send is accepted and forwarded with a byte-identical payload."""
    client = await make_relay()
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": item_type}, payload))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert "detail" not in await resp.json()
    await upstream.wait_for(1)
    items = upstream.received[0].envelope.items
    assert [(i.type, i.payload) for i in items] == [(item_type, payload)]


async def test_all_item_types_in_one_envelope(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A mixed envelope keeps every item, in order, with identical payloads."""
    client = await make_relay()
    body = envelope_bytes({"event_id": EVENT_ID}, *[({"type": t}, p) for t, p in SDK_ITEMS])
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert [(i.type, i.payload) for i in upstream.received[0].envelope.items] == SDK_ITEMS


async def test_items_without_length_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Length-less items (newline-terminated) are accepted and forwarded."""
    client = await make_relay()
    body = b'{"event_id":"%s"}\n{"type":"event"}\n{"message":"a"}\n{"type":"session"}\n{"sid":"s"}' % EVENT_ID.encode()
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    items = upstream.received[0].envelope.items
    assert [(i.type, i.payload) for i in items] == [("event", b'{"message":"a"}'), ("session", b'{"sid":"s"}')]


async def test_unknown_item_type_forwarded_unchanged(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An unknown item type is accepted, its headers and byte-identical payload forwarded."""
    client = await make_relay()
    payload = b"\x00\xff not json {\n at all\n"
    body = envelope_bytes(
        {"event_id": EVENT_ID},
        ({"type": "event"}, b'{"message":"m"}'),
        ({"type": "brand_new_thing", "custom": {"a": [1, 2]}, "filename": "x.bin"}, payload),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    item = upstream.received[0].envelope.items[1]
    assert item.type == "brand_new_thing"
    assert item.payload == payload
    assert item.headers == {
        "type": "brand_new_thing",
        "custom": {"a": [1, 2]},
        "filename": "x.bin",
        "length": len(payload),
    }


async def test_unknown_only_envelope_answers_empty(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope holding only an unknown item type is accepted with {} and forwarded."""
    client = await make_relay()
    body = envelope_bytes({}, ({"type": "mystery"}, b"opaque"))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].payload == b"opaque"


async def test_envelope_headers_preserved(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Envelope headers other than identities (sent_at, sdk, trace ids) are forwarded as sent."""
    client = await make_relay()
    headers = {
        "event_id": EVENT_ID,
        "sent_at": "2024-05-01T10:00:00.000Z",
        "sdk": {"name": "sentry.python", "version": "2.0.0"},
        "trace": {"trace_id": "b" * 32, "public_key": KEY, "sample_rate": "1.0"},
    }
    body = envelope_bytes(headers, ({"type": "event"}, b"{}"))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    got = upstream.received[0].envelope.headers
    assert got["sent_at"] == headers["sent_at"]
    assert got["sdk"] == headers["sdk"]
    assert got["trace"] == {"trace_id": "b" * 32, "public_key": UPSTREAM_KEY, "sample_rate": "1.0"}


@pytest.mark.parametrize("item_type", ["event", "transaction", "session", "client_report", "check_in", "feedback"])
async def test_invalid_json_item_is_400(make_relay: RelayFactory, upstream: FakeUpstream, item_type: str) -> None:
    """A JSON item type with a non-JSON payload is refused with 400 and a detail naming the item."""
    client = await make_relay()
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "attachment"}, b"ok"), ({"type": item_type}, b"{not json"))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 400
    detail = (await resp.json())["detail"]
    assert f"item 1 ({item_type})" in detail
    assert "not valid JSON" in detail


async def test_invalid_envelope_is_400_and_nothing_forwarded(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A malformed envelope is 400 with a detail; only the later valid envelope reaches upstream."""
    client = await make_relay()
    resp = await client.post(URL, data=b'{}\n{"type":"event","length":500}\n{}\n', headers=auth_header())
    assert resp.status == 400
    detail = (await resp.json())["detail"]
    assert detail.startswith("invalid envelope:")
    assert "length 500" in detail
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert len(upstream.received) == 1
    assert upstream.received[0].envelope.event_id == EVENT_ID


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "envelope is empty"),
        (b"not json\n", "envelope header is not valid JSON"),
        (b"[]\n", "must be a JSON object"),
        (b'{}\n{"length":2}\n{}\n', "no string 'type'"),
        (b'{}\n{"type":"event","length":2}\n{}XX', "expected a newline"),
    ],
    ids=["empty", "bad-header", "header-not-object", "no-type", "no-newline-after-payload"],
)
async def test_malformed_envelopes_are_400(make_relay: RelayFactory, body: bytes, fragment: str) -> None:
    """Each kind of malformed envelope is 400 with a detail saying what is wrong."""
    client = await make_relay()
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 400
    assert fragment in (await resp.json())["detail"]


@pytest.mark.parametrize("project", ["abc", "-1", "1" * 19])
async def test_invalid_project_id_is_400(make_relay: RelayFactory, project: str) -> None:
    """A project id that is not a reasonable number is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(f"/api/{project}/envelope/", data=_event(), headers=auth_header())
    assert resp.status == 400
    assert "invalid project id" in (await resp.json())["detail"]


async def test_client_ip_headers_not_forwarded(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """X-Forwarded-For, X-Real-IP and Forwarded sent by the client never reach the upstream."""
    client = await make_relay()
    headers = {
        **auth_header(),
        "X-Forwarded-For": "203.0.113.7, 10.0.0.1",
        "X-Real-IP": "203.0.113.7",
        "Forwarded": "for=203.0.113.7;proto=https",
        "True-Client-IP": "203.0.113.7",
        "CF-Connecting-IP": "203.0.113.7",
    }
    resp = await client.post(URL, data=_event(), headers=headers)
    assert resp.status == 200
    await upstream.wait_for(1)
    sent = {k.lower(): v for k, v in upstream.received[0].headers.items()}
    for name in ("x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip", "cf-connecting-ip"):
        assert name not in sent
    assert "203.0.113.7" not in " ".join(sent.values())


async def test_many_envelopes_all_forwarded(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Several envelopes in a row are each answered with their id and each forwarded once."""
    client = await make_relay()
    ids = [f"{i:032x}" for i in range(1, 6)]
    for event_id in ids:
        resp = await client.post(URL, data=_event(event_id), headers=auth_header())
        assert resp.status == 200
        assert await resp.json() == {"id": event_id}
    await upstream.wait_for(len(ids))
    assert sorted(r.envelope.event_id or "" for r in upstream.received) == ids


async def test_forwarded_outcome_recorded(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A forwarded event is counted as forwarded in relay_outcomes_total once the queue settles."""
    client = await make_relay()
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"abc"))
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await _settled(state)
    totals = outcome_totals(state)
    assert totals[("forwarded", "none", "error")] == 1
    assert totals[("forwarded", "none", "attachment")] == 1


async def test_serialize_roundtrip_through_relay(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope built with Envelope.serialize arrives with identical items."""
    client = await make_relay()
    envelope = Envelope(
        {"event_id": EVENT_ID},
        [Item({"type": "event"}, b'{"x":1}'), Item({"type": "attachment", "filename": "a"}, b"a\nb\n")],
    )
    resp = await client.post(URL, data=envelope.serialize(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    got = upstream.received[0].envelope.items
    assert [(i.type, i.payload, i.headers.get("filename")) for i in got] == [
        ("event", b'{"x":1}', None),
        ("attachment", b"a\nb\n", "a"),
    ]


async def test_content_type_is_not_required(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Envelopes are accepted whatever Content-Type the SDK sends (text/plain from browsers)."""
    client = await make_relay()
    for content_type in ("application/x-sentry-envelope", "text/plain;charset=UTF-8", "application/octet-stream"):
        resp = await client.post(URL, data=_event(), headers={**auth_header(), "Content-Type": content_type})
        assert resp.status == 200
        assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(3)


async def test_response_is_json(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The answer is application/json, and the id a 32-char hex string."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", (await resp.json())["id"])
    await upstream.wait_for(1)


async def _settled(state: RelayState, timeout: float = 10.0) -> None:
    """Wait until the relay's queue holds nothing (every entry settled with an outcome)."""
    spool = state.spool
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while spool.pending():
        if loop.time() > deadline:
            raise AssertionError(f"queue still holds {spool.pending()} envelopes")
        await asyncio.sleep(0.01)
