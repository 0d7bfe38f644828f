"""Port of getsentry/relay `tests/integration/test_replay_recordings.py` as black-box tests of this relay.

Relay source read at commit e62d36aeb8471fcd203e31070d29bfd41f039795.

Relay's test sends the bytes `test` as a recording and reads them back from Kafka. Here a recording is what the SDK
sends (a header line and zlib-compressed rrweb JSON): README, Session Replay, drops one that can't be read.
"""

from __future__ import annotations

from ..conftest import state_of
from ..scrub import rrweb
from ..support import FakeUpstream, outcome_totals
from .conftest import RelayFactory
from .support import envelope, send_envelope, settle

EVENT_ID = "515539018c9b4260a6f999572f1661ee"


async def test_payload(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A replay recording is forwarded with its content, and nothing is dropped."""
    client = await relay_factory()
    events = rrweb.segment("Welcome back", "not an address", "https://example.com/app")
    body = envelope(("replay_recording", rrweb.recording(events)), headers={"event_id": EVENT_ID})
    assert (await send_envelope(client, body)).status == 200
    await upstream.wait_for(1)
    (item,) = upstream.items("replay_recording")
    assert rrweb.events_of(item.payload) == events
    await settle(upstream, 1)
    assert {k for k, v in outcome_totals(state_of(client)).items() if v and k[0] != "forwarded"} == set()
