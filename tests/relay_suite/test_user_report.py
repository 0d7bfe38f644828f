"""Port of getsentry/relay `tests/integration/test_user_report.py` as black-box tests of this relay.

Relay source read at commit 5eda9c9e453f517db004a3d667d26b14e1fc5834.
"""

from __future__ import annotations

import uuid

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import envelope, payloads, send_envelope

REPORT = {"name": "Josh", "email": "", "comments": "I'm having fun", "event_id": "4cec9f3e1f214073b816e0f4de5f59b1"}


async def test_standalone_user_report(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A user report on its own reaches the upstream unchanged."""
    client = await relay_factory()
    assert (await send_envelope(client, envelope(("user_report", REPORT)))).status == 200
    await upstream.wait_for(1)
    assert payloads(upstream, "user_report") == [REPORT]


async def test_user_report_with_event(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A user report sent with its event reaches the upstream unchanged."""
    client = await relay_factory()
    event_id = uuid.uuid1().hex
    error = {
        "event_id": event_id,
        "message": "test",
        "extra": {"msg_text": "test"},
        "type": "error",
        "environment": "production",
        "release": "foo@1.2.3",
    }
    assert (await send_envelope(client, envelope(("event", error), ("user_report", REPORT)))).status == 200
    await upstream.wait_for(1)
    assert payloads(upstream, "user_report") == [REPORT]
