"""Port of getsentry/relay `tests/integration/test_outcome.py` as black-box tests of this relay.

Relay source read at commit 9fdd1bb0cb77075ae69f23f525d16a0fc1bc0ef4.

Relay's external relays report what they drop; this relay does it with client reports sent upstream (README:
"Client reports"). Where Relay's tests make drops with events for an unknown project (which this relay refuses
with 403 before reading them, so they carry no items), an inbound filter makes them here.
"""

from __future__ import annotations

import asyncio

import pytest

from ..support import FakeUpstream, Reply
from .conftest import RelayFactory
from .support import client_reports, payloads, projects_yaml, report_totals, send_event, settle

FILTERED = 'filters: {environments: ["filtered"]}'
DROPPED = {"message": "dropped", "environment": "filtered"}


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_outcomes_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="outcome batches to /api/0/relays/outcomes/ need a registered relay; README: client reports")
def test_outcomes_non_processing() -> None:
    """Skipped: outcome batches to /api/0/relays/outcomes/ need a registered relay; README: client reports."""


async def test_outcomes_not_sent_when_disabled(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """With outcome reporting off, a dropped event produces no report at the upstream."""
    client = await relay_factory(
        "outcomes: {client_reports: false, interval: 100ms}", projects=projects_yaml(upstream.url, FILTERED)
    )
    assert (await send_event(client, DROPPED)).status == 200
    await settle(upstream, 0, 1.0)


async def test_outcomes_non_processing_max_batch_time(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Outcomes are not held past the batch interval: drops spaced wider than it come in one report each."""
    client = await relay_factory(
        "outcomes: {client_reports: true, interval: 100ms}", projects=projects_yaml(upstream.url, FILTERED)
    )
    for sent in range(1, 4):
        assert (await send_event(client, DROPPED)).status == 200
        reports = await client_reports(upstream, at_least=sent)
        assert len(reports) == sent
        assert report_totals(reports[-1:], "filtered_events") == {("environment", "error"): 1}
        await asyncio.sleep(0.3)


async def test_outcomes_non_processing_batching(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Drops within one batch interval are sent together, in one report."""
    client = await relay_factory(
        "outcomes: {client_reports: true, interval: 2s}", projects=projects_yaml(upstream.url, FILTERED)
    )
    for _ in range(3):
        assert (await send_event(client, DROPPED)).status == 200
    reports = await client_reports(upstream)
    await asyncio.sleep(0.3)
    assert len(payloads(upstream, "client_report")) == 1
    assert report_totals(reports, "filtered_events") == {("environment", "error"): 3}


@pytest.mark.skip(reason="outcome `source` belongs to /api/0/relays/outcomes/ batches; client reports have no source")
def test_outcome_source() -> None:
    """Skipped: outcome `source` belongs to /api/0/relays/outcomes/ batches; client reports have no source."""


@pytest.mark.skip(reason="chains of registered relays forwarding outcome batches: this relay never registers")
def test_outcome_forwarding() -> None:
    """Skipped: chains of registered relays forwarding outcome batches: this relay never registers."""


async def test_outcomes_forwarding_rate_limited(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """The upstream's 429 is learned: the next event is 429 and reported once, with the upstream's reason code."""
    upstream.script.append(Reply(429, {"X-Sentry-Rate-Limits": "1600:error:organization:rate_limited"}))
    client = await relay_factory("outcomes: {client_reports: true, interval: 200ms}")
    assert (await send_event(client, {"message": "hello"})).status == 200  # dropped by the upstream
    for _ in range(100):
        if upstream.attempts:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert (await send_event(client, {"message": "hello"})).status == 429
    await client_reports(upstream)
    await asyncio.sleep(0.5)
    reports = payloads(upstream, "client_report")
    # The first event was counted by the upstream that refused it: only the second is reported here.
    assert report_totals(reports, "rate_limited_events") == {("rate_limited", "error"): 1}


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_no_outcomes_rate_limit() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""
