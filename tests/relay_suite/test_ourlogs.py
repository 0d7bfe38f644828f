"""Port of getsentry/relay `tests/integration/test_ourlogs.py` as black-box tests of this relay.

Relay source read at commit bb7a53046eb3bc030f2f06510e0f0d6cb72d3bfb.

Relay reads the logs back from Kafka as EAP trace items; here the log container is read where it leaves the relay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ..conftest import state_of
from ..support import FakeUpstream, outcome_totals
from .conftest import RelayFactory
from .support import envelope, payloads, send_envelope, settle

CONTAINER = {"content_type": "application/vnd.sentry.items.log+json"}


def logs_item(*logs: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """Relay's `envelope_with_sentry_logs`: one `log` container item."""
    return ("log", {"items": list(logs)}, {**CONTAINER, "item_count": len(logs)})


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_ourlog_extraction_with_otel_logs() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


async def test_ourlog_multiple_containers_not_allowed(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """An envelope with two log containers is refused whole: both logs are dropped as invalid."""
    client = await relay_factory()
    log = {
        "timestamp": datetime.now(UTC).timestamp(),
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b175",
        "level": "error",
        "body": "oops, not again",
    }
    await send_envelope(client, envelope(logs_item(log), logs_item(log)))
    await settle(upstream, 0)
    invalid = {k: v for k, v in outcome_totals(state_of(client)).items() if k[0] == "invalid" and v}
    assert sum(v for (_, _, category), v in invalid.items() if category == "log_item") == 2


async def test_ourlog_extraction_with_sentry_logs(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Both logs of a container arrive; a card number in an attribute is `[creditcard]`, with its `_meta`."""
    client = await relay_factory()
    ts = datetime.now(UTC).timestamp()
    attributes = {
        "boolean.attribute": {"value": True, "type": "boolean"},
        "integer.attribute": {"value": 42, "type": "integer"},
        "double.attribute": {"value": 1.23, "type": "double"},
        "string.attribute": {"value": "some string", "type": "string"},
        "pii": {"value": "4242 4242 4242 4242", "type": "string"},
        "sentry.severity_text": {"value": "info", "type": "string"},
    }
    first = {
        "timestamp": ts,
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b175",
        "level": "error",
        "body": "This is really bad",
    }
    second = {
        "timestamp": ts,
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "level": "info",
        "body": "Example log record",
        "attributes": attributes,
    }
    assert (await send_envelope(client, envelope(logs_item(first, second)))).status == 200
    await upstream.wait_for(1)
    (container,) = payloads(upstream, "log")
    got_first, got_second = container["items"]
    assert {k: got_first[k] for k in first} == first
    assert got_second["body"] == "Example log record"
    assert got_second["attributes"]["pii"]["value"] == "[creditcard]"
    meta = got_second["_meta"]["attributes"]["pii"]["value"][""]
    assert meta["len"] == 19
    assert meta["rem"][0][1:] == ["s", 0, 12]
    for key in ("boolean.attribute", "integer.attribute", "double.attribute", "string.attribute"):
        assert got_second["attributes"][key] == attributes[key]
    assert {k for k, v in outcome_totals(state_of(client)).items() if v and k[0] != "forwarded"} == set()


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_ourlog_extraction_with_sentry_logs_with_missing_fields() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="feature flags come with Sentry's project configs; this relay's projects are static config")
def test_ourlog_extraction_is_disabled_without_feature() -> None:
    """Skipped: feature flags come with Sentry's project configs; this relay's projects are static config."""


@pytest.mark.skip(reason="browser name and version from the User-Agent is Sentry's normalization (Kafka items)")
def test_browser_name_version_extraction() -> None:
    """Skipped: browser name and version from the User-Agent is Sentry's normalization (Kafka items)."""
