"""Port of getsentry/relay `tests/integration/test_envelope.py` as black-box tests of this relay.

Relay source read at commit b583160e0637c80415285c6efb84826be9a38ab4.
"""

from __future__ import annotations

import pytest

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import HELLO, envelope, event_of, message_of, send_envelope


async def test_envelope(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope with one event reaches the upstream with its message."""
    client = await relay_factory()
    assert (await send_envelope(client, envelope(("event", HELLO)))).status == 200
    await upstream.wait_for(1)
    assert message_of(event_of(upstream.received[0])) == "Hello, World!"


@pytest.mark.skip(reason="merging `measures` items into the transaction is normalization, done by Sentry's Relay")
def test_measurement_items_envelope() -> None:
    """Skipped: merging `measures` items into the transaction is normalization, done by Sentry's Relay."""


@pytest.mark.skip(reason="stripping measurements from non-transactions is normalization, done by Sentry's Relay")
def test_measurement_strip_envelope() -> None:
    """Skipped: stripping measurements from non-transactions is normalization, done by Sentry's Relay."""
