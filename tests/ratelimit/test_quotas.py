"""Quotas: the window and burst arithmetic, and the stage answering SDKs the way Sentry does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.ratelimit import parse_rate_limits
from relay.ratelimit.memory import MemoryQuotaBackend
from relay.ratelimit.quota import QuotaCheck

from ..conftest import RelayFactory, state_of
from ..support import KEY, OTHER_KEY, PROJECT, FakeClock, FakeUpstream, auth_header, envelope_bytes, outcome_totals

# -- arithmetic ---------------------------------------------------------------------------------------


def check(quantity: int = 1, limit: int = 3, window: int = 60, burst: int | None = None, key: str = "q") -> QuotaCheck:
    """A check on counter `key`."""
    return QuotaCheck(key, limit, window, burst, quantity)


def test_window_accepts_up_to_the_limit_then_refuses_until_the_next_window() -> None:
    """Exactly `limit` units per aligned window; the refusal says how long until the window ends."""
    backend = MemoryQuotaBackend(FakeClock())
    now = 6000.0 + 15  # 15 s into a 60 s window
    assert [backend.consume_now([[check()]], now)[0] for _ in range(3)] == [0.0, 0.0, 0.0]
    assert backend.consume_now([[check()]], now) == [45.0]
    assert backend.consume_now([[check()]], now + 45) == [0.0]  # a new window


def test_a_refused_request_consumes_nothing() -> None:
    """A request that doesn't fit is refused whole; smaller ones still fit afterwards."""
    backend = MemoryQuotaBackend(FakeClock())
    assert backend.consume_now([[check(2)]], 0.0) == [0.0]
    assert backend.consume_now([[check(2)]], 0.0)[0] > 0
    assert backend.consume_now([[check(1)]], 0.0) == [0.0]


def test_groups_are_all_or_nothing_and_decided_in_order() -> None:
    """A group consumes all its checks or none; a later group sees what an earlier one took."""
    backend = MemoryQuotaBackend(FakeClock())
    both = [check(key="a", limit=5), check(key="b", limit=1)]
    assert backend.consume_now([both, [check(key="a", limit=5)]], 0.0) == [0.0, 0.0]
    refused = backend.consume_now([both], 0.0)
    assert refused[0] > 0  # b is full ...
    assert backend.consume_now([[check(3, key="a", limit=5)]], 0.0) == [0.0]  # ... and a lost nothing to it


def test_burst_smooths_inside_the_window() -> None:
    """With a burst, at most `burst` units at once, refilling at limit/window per second."""
    backend = MemoryQuotaBackend(FakeClock())
    burst = check(limit=60, window=60, burst=2)  # one unit per second, two at once
    assert backend.consume_now([[burst], [burst]], 100.0) == [0.0, 0.0]
    wait = backend.consume_now([[burst]], 100.0)[0]
    assert wait == pytest.approx(1.0)
    assert backend.consume_now([[burst]], 101.0) == [0.0]
    assert backend.consume_now([[check(3, limit=60, window=60, burst=2)]], 500.0)[0] == 60.0  # never fits


def test_limit_zero_refuses_everything() -> None:
    """A quota with limit 0 rejects every unit for the whole window."""
    backend = MemoryQuotaBackend(FakeClock())
    assert backend.consume_now([[check(limit=0, window=3600)]], 0.0) == [3600.0]


# -- the stage, through HTTP ----------------------------------------------------------------------------

EVENT = ({"type": "event"}, orjson.dumps({"message": "hello"}))
TRANSACTION = ({"type": "transaction"}, orjson.dumps({"type": "transaction", "transaction": "/x"}))


def projects(upstream: FakeUpstream, quotas: str) -> str:
    """Project 42 with the given quotas YAML (flow style)."""
    dsn = f"{upstream.url.replace('://', '://upkey@')}/4501"
    return f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{dsn}"
    quotas: {quotas}
"""


async def post(client: Any, *items: tuple[dict[str, Any], bytes], key: str = KEY) -> Any:
    """POST an envelope with these items."""
    body = envelope_bytes({"event_id": "a" * 32}, *items)
    return await client.post(f"/api/{PROJECT}/envelope/", data=body, headers=auth_header(key))


async def test_over_quota_answers_429_with_sentry_headers(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Past the limit the SDK gets 429, Retry-After and X-Sentry-Rate-Limits; the item is counted rate_limited."""
    quota = "[{id: errors, categories: [error], scope: key, limit: 2, window: 1h, reason_code: error_budget}]"
    client = await make_relay(projects=projects(upstream, quota))
    for _ in range(2):
        assert (await post(client, EVENT)).status == 200
    refused = await post(client, EVENT)
    assert refused.status == 429
    assert (await refused.json())["detail"]
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    [limit] = parse_rate_limits(refused.headers["X-Sentry-Rate-Limits"])
    assert (limit.categories, limit.scope, limit.reason_code) == (frozenset({"error"}), "key", "error_budget")
    assert (await post(client, TRANSACTION)).status == 200  # other categories are not limited
    assert (await post(client, EVENT, key=OTHER_KEY)).status == 200  # a key quota is per key
    await upstream.wait_for(4)
    assert outcome_totals(state_of(client))[("rate_limited", "error_budget", "error")] == 1


async def test_project_scope_is_shared_by_all_keys(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A project quota counts every key together."""
    client = await make_relay(projects=projects(upstream, "[{id: all, scope: project, limit: 1, window: 1h}]"))
    assert (await post(client, EVENT)).status == 200
    refused = await post(client, EVENT, key=OTHER_KEY)
    assert refused.status == 429
    assert parse_rate_limits(refused.headers["X-Sentry-Rate-Limits"])[0].scope == "project"


async def test_mixed_envelope_loses_only_the_limited_category(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An attachment quota drops the attachments; the event goes on and the answer is 200 with the header."""
    quota = "[{id: files, categories: [attachment], limit: 10, window: 1h}]"
    client = await make_relay(projects=projects(upstream, quota))
    attachment = ({"type": "attachment", "filename": "big.txt"}, b"x" * 64)
    answer = await post(client, EVENT, attachment)
    assert answer.status == 200
    assert "attachment" in answer.headers["X-Sentry-Rate-Limits"]
    await upstream.wait_for(1)
    assert [item.type for item in upstream.received[0].envelope.items] == ["event"]
    totals = outcome_totals(state_of(client))
    assert totals[("rate_limited", "over_quota", "attachment")] == 1
    assert totals[("forwarded", "none", "error")] == 1


async def test_client_reports_are_never_rate_limited(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A quota on every category still lets client reports through."""
    client = await make_relay(projects=projects(upstream, "[{id: nothing, limit: 0, window: 1m}]"))
    report = ({"type": "client_report"}, orjson.dumps({"timestamp": 1, "discarded_events": []}))
    assert (await post(client, report)).status == 200
    assert (await post(client, EVENT)).status == 429
