"""Port of getsentry/relay `tests/integration/test_session.py` as black-box tests of this relay.

Relay source read at commit 458c348163487ff9ee1219c458fd3a703fa8d788.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import Client, envelope, payloads, projects_yaml, send_envelope, settle

SID = "8333339f-5675-4f89-a9a0-1c935255ab58"


async def send_session(client: Client, payload: dict[str, Any]) -> int:
    """Relay's `send_session`: an envelope with one `session` item."""
    return int((await send_envelope(client, envelope(("session", payload)))).status)


def session(**attrs: Any) -> dict[str, Any]:
    """A session update started an hour ago, with these attributes."""
    now = datetime.now(UTC)
    return {
        "sid": SID,
        "timestamp": now.isoformat(),
        "started": (now - timedelta(hours=1)).isoformat(),
        "attrs": {"release": "sentry-test@1.0.0", **attrs},
    }


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_with_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_with_processing_two_events() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_aggregates() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_aggregates_explode() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_with_custom_retention() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="session validation (age against retention) is Sentry's normalization, not a proxy's")
def test_session_age_discard() -> None:
    """Skipped: session validation (age against retention) is Sentry's normalization, not a proxy's."""


@pytest.mark.skip(reason="forcing errors=1 on crashed sessions is Sentry's normalization, not a proxy's")
def test_session_force_errors_on_crash() -> None:
    """Skipped: forcing errors=1 on crashed sessions is Sentry's normalization, not a proxy's."""


@pytest.mark.skip(reason="session validation (release required) is Sentry's normalization, not a proxy's")
def test_session_release_required() -> None:
    """Skipped: session validation (release required) is Sentry's normalization, not a proxy's."""


async def test_session_quotas(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A key quota of 5 sessions: five are forwarded, the next are dropped and then answered 429."""
    quota = "{id: s, categories: [session], scope: key, limit: 5, window: 3600, reason_code: sessions_exceeded}"
    client = await relay_factory(projects=projects_yaml(upstream.url, f"quotas: [{quota}]"))
    for i in range(5):
        assert await send_session(client, session()) == 200
        await upstream.wait_for(i + 1)
    await send_session(client, session())  # Relay: 200 (deferred), not forwarded
    assert await send_session(client, session()) == 429
    await settle(upstream, 5)


async def test_session_disabled(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A session quota of 0 drops every session."""
    quota = "{id: s, categories: [session], scope: key, limit: 0, window: 3600, reason_code: sessions_exceeded}"
    client = await relay_factory(projects=projects_yaml(upstream.url, f"quotas: [{quota}]"))
    await send_session(client, session())
    await settle(upstream, 0)


async def test_session_auto_ip(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A session with `ip_address: {{auto}}` is accepted and forwarded."""
    client = await relay_factory()
    assert await send_session(client, session(ip_address="{{auto}}")) == 200
    await upstream.wait_for(1)
    assert [s["sid"] for s in payloads(upstream, "session")] == [SID]
