"""Large JSON items are validated in the child process, never parsed by the relay's event loop, and
refused exactly as small ones are; without a child, the relay parses them itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from relay.envelope import Item
from relay.scrub.offload import LARGE_BYTES, ChildProcess

from ..conftest import RelayFactory, state_of
from ..support import PROJECT, FakeUpstream, auth_header, envelope_bytes, outcome_totals

URL = f"/api/{PROJECT}/envelope/"


def large_event(**fields: Any) -> dict[str, Any]:
    """An event over LARGE_BYTES: frame vars with an email in every tenth row."""
    rows = [{"id": n, "note": f"row {n} " + "x" * 80, "email": f"user{n}@example.com" if n % 10 == 0 else ""}
            for n in range(LARGE_BYTES // 100 + 500)]  # fmt: skip
    frame = {"function": "export", "vars": {"rows": rows}}
    return {"message": "large", "exception": {"values": [{"type": "E", "stacktrace": {"frames": [frame]}}]}, **fields}


@pytest.fixture
def parsed_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Sizes of every payload the relay's own process parses through `Item.json`."""
    sizes: list[int] = []
    original = Item.json

    def spy(self: Item) -> Any:
        sizes.append(len(self.payload))
        return original(self)

    monkeypatch.setattr(Item, "json", spy)
    yield sizes


async def test_large_event_is_checked_and_scrubbed_in_the_child(
    make_relay: RelayFactory, upstream: FakeUpstream, parsed_sizes: list[int]
) -> None:
    """The event id comes from the payload, the emails are scrubbed, and the relay process never parsed it."""
    client = await make_relay(rules="[secrets, pii]")
    event_id = uuid.uuid4().hex
    payload = orjson.dumps(large_event(event_id=event_id))
    assert len(payload) > LARGE_BYTES
    resp = await client.post(URL, data=envelope_bytes({}, ({"type": "event"}, payload)), headers=auth_header())
    assert resp.status == 200
    assert (await resp.json())["id"] == event_id
    await upstream.wait_for(1, timeout=30)
    assert max(parsed_sizes, default=0) <= LARGE_BYTES, "a large payload was parsed in the relay process"
    [event] = [item.json() for item in upstream.items("event")]  # (the fake upstream parses: after the check)
    assert "@example.com" not in orjson.dumps(event).decode()
    assert upstream.received[0].envelope.event_id == event_id
    assert state_of(client).scrub.child.pool is not None


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (orjson.dumps(large_event()) + b" trailing", "item 0 (event) payload is not valid JSON: "),
        (orjson.dumps([large_event()]), "item 0 (event) payload must be a JSON object"),
        (orjson.dumps(large_event(event_id="not-a-uuid")), "item 0 (event) event_id is not a valid event id"),
    ],
)
async def test_large_invalid_event_is_refused_like_a_small_one(
    make_relay: RelayFactory, parsed_sizes: list[int], payload: bytes, detail: str
) -> None:
    """Invalid JSON, a non-object and a bad event id are 400 with the usual detail and outcome."""
    client = await make_relay(rules="[secrets, pii]")
    resp = await client.post(URL, data=envelope_bytes({}, ({"type": "event"}, payload)), headers=auth_header())
    assert resp.status == 400
    assert (await resp.json())["detail"].startswith(detail)
    assert outcome_totals(state_of(client))[("invalid", "invalid_json", "error")] == 1
    assert max(parsed_sizes, default=0) <= LARGE_BYTES


async def test_invalid_json_detail_names_the_parsers_reason(make_relay: RelayFactory) -> None:
    """The reason in the detail is the parser's, as when the relay parses a small payload itself."""
    client = await make_relay()
    payload = orjson.dumps(large_event())[:-1]
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg
    resp = await client.post(URL, data=envelope_bytes({}, ({"type": "event"}, payload)), headers=auth_header())
    assert resp.status == 400
    assert (await resp.json())["detail"] == f"item 0 (event) payload is not valid JSON: {reason}"


async def test_without_a_child_large_events_are_checked_and_scrubbed_here(
    make_relay: RelayFactory, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the child can't be used, validation parses on the loop and a thread scrubs: nothing is lost."""

    async def unavailable(self: ChildProcess, function: Any, argument: Any) -> Any:
        raise RuntimeError("no child process here")

    monkeypatch.setattr(ChildProcess, "call", unavailable)
    client = await make_relay(rules="[secrets, pii]")
    event_id = uuid.uuid4().hex
    good = envelope_bytes({}, ({"type": "event"}, orjson.dumps(large_event(event_id=event_id))))
    bad = envelope_bytes({}, ({"type": "event"}, orjson.dumps([large_event()])))
    resp = await client.post(URL, data=good, headers=auth_header())
    assert resp.status == 200
    assert (await resp.json())["id"] == event_id
    resp = await client.post(URL, data=bad, headers=auth_header())
    assert resp.status == 400
    await upstream.wait_for(1, timeout=30)
    [event] = [item.json() for item in upstream.items("event")]
    assert "@example.com" not in orjson.dumps(event).decode()
    assert state_of(client).scrub.child.pool is None
