"""Port of getsentry/relay `tests/integration/test_feedback.py` as black-box tests of this relay.

Relay source read at commit d346dcf118728bf8e11598dae5c2296611874e0c.
"""

from __future__ import annotations

from typing import Any

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import SAFARI, envelope, payloads, send_envelope


def generate_feedback_sdk_event() -> dict[str, Any]:
    """Relay's `generate_feedback_sdk_event`."""
    return {
        "type": "feedback",
        "event_id": "d2132d31b39445f1938d7e21b6bf0ec4",
        "timestamp": 1597977777.6189718,
        "dist": "1.12",
        "platform": "javascript",
        "environment": "production",
        "release": 42,
        "tags": {"transaction": "/organizations/:orgId/performance/:eventSlug/"},
        "sdk": {"name": "name", "version": "veresion"},
        "user": {"id": "123", "username": "user", "email": "user@site.com", "ip_address": "192.168.11.12"},
        "request": {"url": None, "headers": {"user-Agent": SAFARI}},
        "contexts": {
            "feedback": {"message": "test message", "contact_email": "test@example.com", "type": "userreportv2"},
            "trace": {"trace_id": "4C79F60C11214EB38604F4AE0781BFB2", "span_id": "FA90FDEAD5F74052", "type": "trace"},
            "replay": {"replay_id": "e2d42047b1c5431c8cba85ee2a8ab25d"},
        },
    }


async def test_feedback_event_with_processing(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Feedback keeps its fields and the contact address; `user.email` becomes `[email]` (normalization is Sentry's)."""
    client = await relay_factory()
    feedback = generate_feedback_sdk_event()
    assert (await send_envelope(client, envelope(("feedback", feedback)))).status == 200
    await upstream.wait_for(1)
    (parsed,) = payloads(upstream, "feedback")
    assert parsed["event_id"]
    for field in ("type", "dist", "platform", "environment"):
        assert parsed[field] == feedback[field]
    assert str(parsed["release"]) == str(feedback["release"])
    assert parsed["sdk"] == feedback["sdk"]
    assert (parsed["user"]["id"], parsed["user"]["username"]) == ("123", "user")
    assert parsed["user"]["ip_address"] == "192.168.11.12"
    assert parsed["user"]["email"] == "[email]"
    assert parsed["timestamp"]
    assert parsed["contexts"]["feedback"] == feedback["contexts"]["feedback"]
    assert parsed["contexts"]["replay"]["replay_id"] == "e2d42047b1c5431c8cba85ee2a8ab25d"


async def test_feedback_events_without_processing(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Feedback is forwarded as the envelope's one `feedback` item."""
    client = await relay_factory()
    assert (await send_envelope(client, envelope(("feedback", generate_feedback_sdk_event())))).status == 200
    await upstream.wait_for(1)
    assert [item.type for item in upstream.received[0].envelope.items] == ["feedback"]
