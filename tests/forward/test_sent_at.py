"""sent_at is moved on by the time an envelope waited in the relay, so Sentry doesn't read the wait as skew."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from relay.forward.sent_at import redated

from ..conftest import RelayFactory
from ..support import PROJECT, FakeUpstream, Reply, auth_header, envelope_bytes

BODY = b'{"event_id":"' + b"a" * 32 + b'","sent_at":"2026-12-07T10:00:00.000000Z"}\n{"type":"event","length":2}\n{}\n'


def _sent_at(body: bytes) -> str:
    return str(orjson.loads(body.split(b"\n", 1)[0])["sent_at"])


def test_held_time_is_added_and_the_rest_kept() -> None:
    """90 s in the spool move sent_at on by 90 s; the items and other header fields are byte for byte kept."""
    out = redated(BODY, received_at=1000.0, now=1090.5)
    assert _sent_at(out) == "2026-12-07T10:01:30.500000Z"
    assert out.split(b"\n", 1)[1] == BODY.split(b"\n", 1)[1]
    assert orjson.loads(out.split(b"\n", 1)[0])["event_id"] == "a" * 32


@pytest.mark.parametrize(
    ("body", "held"),
    [
        (BODY, 0.2),  # forwarded at once: untouched
        (b'{"event_id":"x"}\n{"type":"event","length":2}\n{}\n', 60.0),  # no sent_at
        (b'{"sent_at":"yesterday"}\n{"type":"event","length":2}\n{}\n', 60.0),  # not a timestamp
        (b'{"sent_at":"9999-12-31T23:59:59Z"}\n', 3600.0),  # would pass year 9999
        (b'{"sent_at": 5}\n', 60.0),
    ],
)
def test_left_alone(body: bytes, held: float) -> None:
    """Without a timestamp to move, or when held under a second, the body is returned as it came."""
    assert redated(body, received_at=0.0, now=held) == body


def test_offset_timestamps_keep_their_instant() -> None:
    """A sent_at with an offset is read as the instant it names and written back in UTC."""
    body = b'{"sent_at":"2026-12-07T11:00:00+01:00"}\n'
    assert _sent_at(redated(body, 0.0, 10.0)) == "2026-12-07T10:00:10.000000Z"


async def test_an_envelope_held_through_an_outage_arrives_redated(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """An envelope that waited for the upstream to come back carries sent_at moved on by its wait."""
    upstream.script = [Reply(503, delay=1.2), Reply(503)]  # at least 1.2 s held before it gets through
    client = await make_relay()
    sent = "2026-12-07T10:00:00.000000Z"
    body = envelope_bytes({"event_id": "b" * 32, "sent_at": sent}, ({"type": "event"}, b'{"message":"x"}'))
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1, timeout=20)
    forwarded = upstream.received[0].envelope.headers["sent_at"]
    moved = _instant(forwarded) - _instant(sent)
    waited = upstream.attempts[-1] - upstream.attempts[0]
    assert waited >= 1.2
    assert waited - 0.05 <= moved.total_seconds() < waited + 5, (forwarded, waited)


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
