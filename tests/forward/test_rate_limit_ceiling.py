"""Absurd limits from the upstream, over real HTTP: cut to `upstream.max_rate_limit`, honoured, then lifted."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from relay.app import create_app

from ..conftest import RelayFactory, state_of
from ..support import FakeUpstream, Reply, envelope_bytes, outcome_totals
from .test_forwarder import event_envelope, eventually, nonzero, post, rate_limit_counts, settled, tuned_config

TRANSACTION = envelope_bytes({"event_id": "e" * 32}, ({"type": "transaction"}, b'{"type": "transaction"}'))


async def test_huge_retry_after_is_cut_to_an_hour(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """After `429 Retry-After: 1e308`, SDKs are told to wait an hour at most, not a 309-digit number of seconds."""
    upstream.script = [Reply(429, {"Retry-After": "1e308"})]
    client = await make_relay()
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await eventually(lambda: nonzero(rate_limit_counts(state)) == {"key": 1}, what="the limit to be learned")
    resp = await post(client, event_envelope())
    assert resp.status == 429
    assert 3590 <= int(resp.headers["Retry-After"]) <= 3600
    assert re.fullmatch(r"3[56]\d\d::key", resp.headers["X-Sentry-Rate-Limits"]), resp.headers["X-Sentry-Rate-Limits"]
    await settled(state)  # the refused first envelope waits an hour: past retry.max_elapsed (30s), so settled now
    assert nonzero(outcome_totals(state)) == {
        ("rate_limited", "upstream_limited_on_send", "error"): 1,
        ("rate_limited", "upstream_rate_limited", "error"): 1,
    }


async def test_year_long_organization_limit_lifts_after_the_ceiling(
    aiohttp_client: Any, upstream: FakeUpstream
) -> None:
    """`X-Sentry-Rate-Limits: 31536000::organization` is honoured for `max_rate_limit` (1s here), then lifted."""
    upstream.script = [Reply(200, {"X-Sentry-Rate-Limits": "31536000::organization"})]
    client = await aiohttp_client(create_app(tuned_config(upstream.url, {"upstream": {"max_rate_limit": "1s"}})))
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await upstream.wait_for(1)
    await eventually(lambda: nonzero(rate_limit_counts(state)) == {"organization": 1}, what="the limit to be learned")
    refused = await post(client, event_envelope())
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-Sentry-Rate-Limits"] == "1::organization"
    await asyncio.sleep(1.05)
    assert (await post(client, event_envelope())).status == 200
    await upstream.wait_for(2)
    await settled(state)
    assert nonzero(outcome_totals(state)) == {
        ("forwarded", "none", "error"): 2,
        ("rate_limited", "upstream_rate_limited", "error"): 1,
    }


async def test_a_repeated_absurd_limit_is_logged_once(
    make_relay: RelayFactory, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Every answer announcing a year-long transaction limit: one warning, with the announced value."""
    upstream.script = [Reply(200, {"X-Sentry-Rate-Limits": "31536000:transaction:organization"}) for _ in range(3)]
    client = await make_relay()
    state = state_of(client)
    with caplog.at_level(logging.INFO, logger="relay.forward"):
        for count in (1, 2, 3):
            assert (await post(client, event_envelope())).status == 200
            await upstream.wait_for(count)
        await settled(state)
        resp = await post(client, TRANSACTION)
    assert resp.status == 429
    assert 3590 <= int(resp.headers["Retry-After"]) <= 3600
    warnings = [r for r in caplog.records if "max_rate_limit" in r.getMessage()]
    assert [(r.levelno, r.__dict__["announced"], r.__dict__["scope"]) for r in warnings] == [
        (logging.WARNING, 31536000.0, "organization")
    ]
    assert nonzero(rate_limit_counts(state)) == {"organization": 3}
