"""The forwarder end to end: real HTTP to a scripted upstream, retries, backoff, limits and outcomes."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from relay.app import create_app
from relay.config import Config, parse_config
from relay.ingest import RelayState

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    UPSTREAM_KEY,
    FakeUpstream,
    Reply,
    auth_header,
    config_text,
    envelope_bytes,
    free_port,
    outcome_totals,
    received_total,
)

# -- helpers ------------------------------------------------------------------


def tuned_config(url: str, overrides: dict[str, Any], **kwargs: Any) -> Config:
    """`config_text` with some keys replaced (deep-merged), parsed through the real loader."""
    raw = yaml.safe_load(config_text(url, **kwargs))

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(raw, overrides)
    return parse_config(yaml.safe_dump(raw), "test.yml", {})


def event_envelope(event_id: str | None = None, *, attachment: bytes | None = None, project: int = 42) -> bytes:
    """An envelope holding one error event, optionally followed by an attachment."""
    event_id = event_id or uuid.uuid4().hex
    items: list[tuple[dict[str, Any], bytes]] = [({"type": "event"}, orjson.dumps({"message": "boom"}))]
    if attachment is not None:
        items.append(({"type": "attachment", "filename": "log.txt"}, attachment))
    return envelope_bytes({"event_id": event_id, "dsn": f"http://{KEY}@relay/{project}"}, *items)


def client_report_envelope(n: int) -> bytes:
    """An envelope holding only a client report."""
    report = {
        "timestamp": 1700000000 + n,
        "discarded_events": [{"reason": "ratelimit_backoff", "category": "error", "quantity": n}],
    }
    return envelope_bytes({"dsn": f"http://{KEY}@relay/42"}, ({"type": "client_report"}, orjson.dumps(report)))


async def post(client: TestClient[Any, Any], body: bytes) -> Any:
    """POST an envelope to project 42 with the SDK's auth header."""
    return await client.post("/api/42/envelope/", data=body, headers=auth_header())


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll until `predicate()` holds, failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def attempt_counts(state: RelayState) -> dict[str, float]:
    """relay_forward_attempts_total as {status label: count}."""
    return {
        s.labels["status"]: s.value
        for m in state.metrics.forward_attempts.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


def rate_limit_counts(state: RelayState) -> dict[str, float]:
    """relay_upstream_rate_limits_total as {scope: count}."""
    return {
        s.labels["scope"]: s.value
        for m in state.metrics.upstream_rate_limits.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


def nonzero(totals: dict[Any, float]) -> dict[Any, float]:
    """Drop zero-valued samples."""
    return {k: v for k, v in totals.items() if v}


async def settled(state: RelayState, timeout: float = 5.0) -> None:
    """Wait until the spool is empty, then check that every received item has exactly one outcome."""
    await eventually(lambda: state.spool.pending() == 0, timeout, "the spool to empty")
    assert received_total(state) == sum(outcome_totals(state).values())


# -- transient faults -------------------------------------------------------------


async def test_500_twice_then_200_is_delivered_once(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Two 500s are retried; the third attempt delivers the envelope exactly once."""
    upstream.script = [Reply(500), Reply(500)]
    client = await make_relay()
    resp = await post(client, event_envelope("a" * 32))
    assert resp.status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    assert len(upstream.received) == 1
    assert upstream.received[0].envelope.event_id == "a" * 32
    assert len(upstream.attempts) == 3
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 1}
    assert nonzero(attempt_counts(state)) == {"500": 2, "200": 1}


async def test_408_and_502_are_retried(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """408 and other 5xx statuses count as transient."""
    upstream.script = [Reply(408), Reply(502), Reply(503)]
    client = await make_relay()
    assert (await post(client, event_envelope())).status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    assert len(upstream.attempts) == 4
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 1}
    assert nonzero(attempt_counts(state)) == {"408": 1, "502": 1, "503": 1, "200": 1}


@pytest.mark.parametrize(
    ("headers", "scope"),
    [({"Retry-After": "2"}, "key"), ({"X-Sentry-Rate-Limits": "2:error:key"}, "key")],
)
async def test_429_is_final_and_its_limit_learned(
    make_relay: RelayFactory, upstream: FakeUpstream, headers: dict[str, str], scope: str
) -> None:
    """A 429 settles the envelope as rate_limited (as Relay does): it is never sent again once the limit expires,
    which would count it twice upstream and spend the next window's quota; the limit is learned."""
    upstream.script = [Reply(429, headers)]
    client = await make_relay()
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await settled(state)
    await asyncio.sleep(2.5)  # past the limit: nothing is re-sent
    assert len(upstream.attempts) == 1 and upstream.received == []
    assert nonzero(outcome_totals(state)) == {("rate_limited", "upstream_limited_on_send", "error"): 1}
    assert nonzero(attempt_counts(state)) == {"429": 1}
    assert nonzero(rate_limit_counts(state)) == {scope: 1}
    assert (await post(client, event_envelope("b" * 32))).status == 200  # the limit has expired: accepted again
    await upstream.wait_for(1)


async def test_connection_refused_then_upstream_comes_back(aiohttp_client: Any) -> None:
    """While nothing listens the relay keeps retrying; once a server starts on that port it delivers."""
    port = free_port()
    fake = FakeUpstream()
    fake.url = f"http://127.0.0.1:{port}"
    client = await aiohttp_client(create_app(tuned_config(fake.url, {})))
    state = state_of(client)
    assert (await post(client, event_envelope("c" * 32))).status == 200
    await eventually(lambda: attempt_counts(state).get("network_error", 0) >= 2, what="refused attempts")
    assert state.spool.pending() == 1
    assert sum(outcome_totals(state).values()) == 0

    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await fake.wait_for(1)
        await settled(state)
    finally:
        await runner.cleanup()
    assert [r.envelope.event_id for r in fake.received] == ["c" * 32]
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 1}
    counts = nonzero(attempt_counts(state))
    assert set(counts) == {"network_error", "200"}
    assert counts["200"] == 1
    assert counts["network_error"] >= 2


async def test_upstream_timeout_is_retried(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """An upstream slower than upstream.timeout counts as `timeout` and the envelope is retried."""
    upstream.script = [Reply(500, delay=1.0)]
    config = tuned_config(upstream.url, {"upstream": {"timeout": "200ms"}})
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await upstream.wait_for(1)
    await settled(state)
    assert len(upstream.received) == 1
    assert nonzero(attempt_counts(state)) == {"timeout": 1, "200": 1}
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 1}


# -- permanent faults --------------------------------------------------------------


async def _rejected_once(make_relay: RelayFactory, upstream: FakeUpstream, status: int) -> None:
    upstream.script = [Reply(status)]
    client = await make_relay()
    state = state_of(client)
    assert (await post(client, event_envelope(attachment=b"log line\n"))).status == 200
    await settled(state)
    await asyncio.sleep(0.15)  # longer than any backoff: a retry would have happened by now
    assert len(upstream.attempts) == 1
    assert upstream.received == []
    assert nonzero(outcome_totals(state)) == {
        ("invalid", "upstream_rejected", "error"): 1,
        ("invalid", "upstream_rejected", "attachment"): 1,
    }
    assert nonzero(attempt_counts(state)) == {str(status): 1}
    assert received_total(state) == 2


async def test_400_is_not_retried(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A 400 from the upstream is final: one attempt, outcome invalid/upstream_rejected."""
    await _rejected_once(make_relay, upstream, 400)


async def test_413_is_not_retried(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A 413 from the upstream is final: one attempt, outcome invalid/upstream_rejected."""
    await _rejected_once(make_relay, upstream, 413)


async def test_403_is_not_retried(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A 403 from the upstream is final: one attempt, outcome invalid/upstream_rejected."""
    await _rejected_once(make_relay, upstream, 403)


async def test_max_elapsed_exceeded_drops_with_retry_exhausted(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """An upstream that keeps failing past retry.max_elapsed ends in dropped/retry_exhausted."""
    upstream.script = [Reply(500)] * 1000
    config = tuned_config(upstream.url, {"upstream": {"retry": {"max_elapsed": "150ms"}}})
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await settled(state)
    attempts = len(upstream.attempts)
    assert attempts >= 2
    assert upstream.received == []
    assert nonzero(outcome_totals(state)) == {("dropped", "retry_exhausted", "error"): 1}
    assert nonzero(attempt_counts(state)) == {"500": attempts}
    await asyncio.sleep(0.1)
    assert len(upstream.attempts) == attempts  # given up for good


# -- limits learned from the upstream, enforced at the door -----------------------


async def _limit_errors_for_project(client: TestClient[Any, Any], upstream: FakeUpstream) -> RelayState:
    """Have the upstream answer 429 with a 60s project-scope error limit, and wait until it is learned."""
    upstream.script = [Reply(429, {"X-Sentry-Rate-Limits": "60:error:project"})]
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await settled(state)
    assert nonzero(outcome_totals(state)) == {("rate_limited", "upstream_limited_on_send", "error"): 1}
    assert nonzero(rate_limit_counts(state)) == {"project": 1}
    return state


async def test_learned_limit_rejects_event_only_envelope_at_the_door(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """After a 60s error limit, an event-only envelope is answered 429 with Retry-After and X-Sentry-Rate-Limits."""
    client = await make_relay()
    state = await _limit_errors_for_project(client, upstream)
    resp = await post(client, event_envelope())
    assert resp.status == 429
    retry_after = int(resp.headers["Retry-After"])
    assert 55 <= retry_after <= 60
    header = resp.headers["X-Sentry-Rate-Limits"]
    assert re.fullmatch(r"\d+:error:project", header), header
    assert 55 <= int(header.split(":")[0]) <= 60
    assert "detail" in await resp.json()
    await settled(state)
    assert len(upstream.attempts) == 1  # the refused envelope never went upstream
    assert nonzero(outcome_totals(state)) == {
        ("rate_limited", "upstream_limited_on_send", "error"): 1,
        ("rate_limited", "upstream_rate_limited", "error"): 1,
    }
    assert received_total(state) == 2


async def test_learned_limit_drops_the_event_with_its_attachment(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """With errors limited, an event + attachment envelope is refused whole (429): the attachment goes with it."""
    client = await make_relay()
    state = await _limit_errors_for_project(client, upstream)
    resp = await post(client, event_envelope("d" * 32, attachment=b"attached bytes"))
    assert resp.status == 429
    assert re.fullmatch(r"\d+:error:project", resp.headers["X-Sentry-Rate-Limits"])
    await settled(state)
    assert nonzero(outcome_totals(state)) == {
        ("rate_limited", "upstream_limited_on_send", "error"): 1,
        ("rate_limited", "upstream_rate_limited", "error"): 1,
        ("rate_limited", "upstream_rate_limited", "attachment"): 1,
    }
    assert nonzero(attempt_counts(state)) == {"429": 1}


async def test_learned_limit_does_not_affect_other_categories(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An error limit leaves transactions alone, with no rate-limit header on their answer."""
    client = await make_relay()
    state = await _limit_errors_for_project(client, upstream)
    body = envelope_bytes({"event_id": "e" * 32}, ({"type": "transaction"}, b'{"type": "transaction"}'))
    resp = await post(client, body)
    assert resp.status == 200
    assert "X-Sentry-Rate-Limits" not in resp.headers
    await upstream.wait_for(1)
    await settled(state)
    assert nonzero(outcome_totals(state))[("forwarded", "none", "transaction")] == 1


# -- batching and concurrency -------------------------------------------------------


async def test_many_concurrent_envelopes_are_all_delivered(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Fifty envelopes sent at once all reach the upstream, each exactly once."""
    client = await make_relay()
    state = state_of(client)
    ids = [uuid.uuid4().hex for _ in range(50)]
    responses = await asyncio.gather(*(post(client, event_envelope(i)) for i in ids))
    assert [r.status for r in responses] == [200] * 50
    await upstream.wait_for(50)
    await settled(state)
    assert sorted(str(r.envelope.event_id) for r in upstream.received) == sorted(ids)
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 50}
    assert nonzero(attempt_counts(state)) == {"200": 50}


class CountingUpstream:
    """An upstream that answers slowly and records the most requests it had in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.current = 0
        self.peak = 0
        self.done = 0

    def app(self) -> web.Application:
        """The aiohttp app serving `/api/<project>/envelope/`."""
        app = web.Application()
        app.router.add_post("/api/{project}/envelope/", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Count this request as in flight while it sleeps."""
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            await request.read()
            await asyncio.sleep(self.delay)
        finally:
            self.current -= 1
        self.done += 1
        return web.json_response({})


async def _peak_concurrency(aiohttp_client: Any, aiohttp_server: Any, concurrency: int, envelopes: int) -> int:
    counting = CountingUpstream(delay=0.05)
    server = await aiohttp_server(counting.app())
    url = str(server.make_url("")).rstrip("/")
    client = await aiohttp_client(create_app(tuned_config(url, {"upstream": {"concurrency": concurrency}})))
    state = state_of(client)
    responses = await asyncio.gather(*(post(client, event_envelope()) for _ in range(envelopes)))
    assert all(r.status == 200 for r in responses)
    await settled(state)
    assert counting.done == envelopes
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): envelopes}
    return counting.peak


async def test_concurrency_bounds_requests_in_flight(aiohttp_client: Any, aiohttp_server: Any) -> None:
    """With upstream.concurrency 3, at most three requests are in flight, and that many are used."""
    assert await _peak_concurrency(aiohttp_client, aiohttp_server, 3, 12) == 3


async def test_concurrency_one_sends_serially(aiohttp_client: Any, aiohttp_server: Any) -> None:
    """With upstream.concurrency 1, requests never overlap."""
    assert await _peak_concurrency(aiohttp_client, aiohttp_server, 1, 5) == 1


async def test_client_reports_queued_together_are_merged(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """Client-report-only envelopes taken in one batch go upstream as fewer envelopes, every report intact."""
    config = tuned_config(upstream.url, {"upstream": {"batch": {"linger": "200ms"}}})
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    responses = await asyncio.gather(*(post(client, client_report_envelope(n)) for n in range(1, 6)))
    assert [r.status for r in responses] == [200] * 5
    await upstream.wait_for(1)
    await settled(state)
    assert len(upstream.received) < 5
    reports = [orjson.loads(item.payload) for item in upstream.items("client_report")]
    assert sorted(r["discarded_events"][0]["quantity"] for r in reports) == [1, 2, 3, 4, 5]
    for rec in upstream.received:
        assert {item.type for item in rec.envelope.items} == {"client_report"}
        assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "internal"): 5}
    assert sum(attempt_counts(state).values()) == len(upstream.received)


async def test_client_reports_are_not_merged_with_events(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """Events in the same batch as client reports keep their own envelopes."""
    config = tuned_config(upstream.url, {"upstream": {"batch": {"linger": "200ms"}}})
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    bodies = [event_envelope("1" * 32), client_report_envelope(1), event_envelope("2" * 32), client_report_envelope(2)]
    responses = await asyncio.gather(*(post(client, b) for b in bodies))
    assert [r.status for r in responses] == [200] * 4
    await settled(state)
    kinds = sorted(tuple(item.type for item in rec.envelope.items) for rec in upstream.received)
    assert kinds == [("client_report", "client_report"), ("event",), ("event",)]
    assert nonzero(outcome_totals(state)) == {
        ("forwarded", "none", "error"): 2,
        ("forwarded", "none", "internal"): 2,
    }


async def test_limits_on_a_successful_response_are_learned(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """X-Sentry-Rate-Limits on a 200 is remembered too: the next transaction is refused at the door."""
    upstream.script = [Reply(200, {"X-Sentry-Rate-Limits": "60:transaction:project"})]
    client = await make_relay()
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await upstream.wait_for(1)
    await settled(state)
    body = envelope_bytes({"event_id": "e" * 32}, ({"type": "transaction"}, b'{"type": "transaction"}'))
    resp = await post(client, body)
    assert resp.status == 429
    assert re.fullmatch(r"\d+:transaction:project", resp.headers["X-Sentry-Rate-Limits"])
    assert (await post(client, event_envelope())).status == 200  # errors are not limited
    await upstream.wait_for(2)
    await settled(state)
    assert nonzero(outcome_totals(state)) == {
        ("forwarded", "none", "error"): 2,
        ("rate_limited", "upstream_rate_limited", "transaction"): 1,
    }


async def test_organization_limit_covers_other_projects(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """An organization-scoped limit learned through project 42 also refuses project 43 on the same upstream."""
    dsn = upstream.url.replace("://", f"://{UPSTREAM_KEY}@")
    projects = f"""
projects:
  - id: 42
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}/4501"
  - id: 43
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}/4502"
"""
    upstream.script = [Reply(429, {"X-Sentry-Rate-Limits": "60::organization:org_quota"})]
    client = await aiohttp_client(create_app(tuned_config(upstream.url, {}, projects=projects)))
    state = state_of(client)
    assert (await post(client, event_envelope())).status == 200
    await settled(state)
    resp = await client.post("/api/43/envelope/", data=event_envelope(project=43), headers=auth_header())
    assert resp.status == 429
    assert re.fullmatch(r"\d+::organization:org_quota", resp.headers["X-Sentry-Rate-Limits"])
    await settled(state)
    assert nonzero(outcome_totals(state)) == {
        ("rate_limited", "upstream_limited_on_send", "error"): 1,
        ("rate_limited", "org_quota", "error"): 1,  # the upstream's reason code, as Relay reports it
    }
    assert nonzero(rate_limit_counts(state)) == {"organization": 1}
