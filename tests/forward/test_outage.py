"""Outage mode over real HTTP with the SQLite spool: one probe at a time, recovery, rejects, a full spool, expiry."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

import relay.spool.sqlite as sqlite_module
from relay.app import create_app
from relay.config import parse_config
from relay.envelope import parse_envelope
from relay.forward import Forwarder, Upstream, UpstreamResponse, UpstreamRouter
from relay.routing import Target

from ..conftest import state_of
from ..support import KEY, FakeUpstream, Reply, auth_header, config_text, envelope_bytes, outcome_totals, received_total

OUTAGE = {"outage": {"after_failures": 3, "probe_max": "200ms"}, "retry": {"initial": "10ms", "max": "50ms"}}


# -- helpers ---------------------------------------------------------------------------


def sqlite_relay_config(
    url: str, spool_dir: Path, upstream: dict[str, Any], spool: dict[str, Any] | None = None
) -> Any:
    """`config_text` with a SQLite spool in `spool_dir` and `upstream` keys deep-merged in."""
    spool_yaml = orjson.dumps({"backend": "sqlite", "path": str(spool_dir), "fsync": False, **(spool or {})}).decode()
    raw = yaml.safe_load(config_text(url, spool=spool_yaml))

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(raw["upstream"], upstream)
    return parse_config(yaml.safe_dump(raw), "test.yml", {})


def event_envelope(event_id: str, message: str = "boom") -> bytes:
    """An envelope holding one error event."""
    return envelope_bytes(
        {"event_id": event_id, "dsn": f"http://{KEY}@relay/42"},
        ({"type": "event"}, orjson.dumps({"message": message})),
    )


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


async def scrape(client: TestClient[Any, Any], name: str) -> float:
    """One unlabelled sample from the relay's /metrics."""
    response = await client.get("/metrics")
    text = await response.text()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


def nonzero(totals: dict[Any, float]) -> dict[Any, float]:
    """Drop zero-valued samples."""
    return {k: v for k, v in totals.items() if v}


def db_count(spool_dir: Path) -> int:
    """Rows in the spool database, read through a separate connection."""
    db = sqlite3.connect(spool_dir / "spool.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    finally:
        db.close()


class WatchedUpstream:
    """The relay's real upstream client, wrapped to see each send begin and end from the relay's side."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.forwarder: Forwarder | None = None
        self.before_outage = 0  # sends in flight that began before outage mode
        self.during_outage = 0  # sends in flight that began in outage mode
        self.outage_sends: list[int] = []  # for each send begun in outage mode: such sends in flight, itself included

    async def start(self) -> None:
        """Start the wrapped upstream."""
        await self.inner.start()

    async def close(self) -> None:
        """Close the wrapped upstream."""
        await self.inner.close()

    async def send(self, target: Target, body: bytes, client: str | None) -> UpstreamResponse:
        """Send through the wrapped upstream, counting sends in flight by whether outage mode was on."""
        outage = self.forwarder is not None and self.forwarder.outage
        if outage:
            self.during_outage += 1
            self.outage_sends.append(self.during_outage)
        else:
            self.before_outage += 1
        try:
            return await self.inner.send(target, body, client)
        finally:
            if outage:
                self.during_outage -= 1
            else:
                self.before_outage -= 1


class SwitchableUpstream:
    """A Sentry stand-in that is down (slow 503s) or up (200s), and records concurrency per request."""

    def __init__(self, delay: float = 0.02) -> None:
        self.up = False
        self.delay = delay
        self.current = 0
        self.watch: WatchedUpstream | None = None
        self.arrivals: list[tuple[bool, int]] = []  # (only outage-mode sends can be in flight, requests in flight)
        self.delivered: list[str] = []
        self.url = ""

    def app(self) -> web.Application:
        """The aiohttp app serving `/api/<project>/envelope/`."""
        app = web.Application()
        app.router.add_post("/api/{project}/envelope/", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Answer 503 after a pause while down; record the event id and answer 200 while up."""
        self.current += 1
        watch = self.watch
        probing = watch is not None and watch.forwarder is not None and watch.forwarder.outage
        self.arrivals.append((probing and watch is not None and watch.before_outage == 0, self.current))
        try:
            body = await request.read()
            if not self.up:
                await asyncio.sleep(self.delay)
                return web.json_response({"detail": "down"}, status=503)
            self.delivered.append(str(parse_envelope(body).event_id))
            return web.json_response({})
        finally:
            self.current -= 1

    def outage_arrivals(self) -> list[int]:
        """Requests in flight at each arrival in outage mode, once the sends begun before it have finished."""
        return [in_flight for probing, in_flight in self.arrivals if probing]


@pytest.fixture
async def switchable(aiohttp_server: Any) -> SwitchableUpstream:
    """A running SwitchableUpstream, down to begin with."""
    fake = SwitchableUpstream()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


async def relay_for(
    aiohttp_client: Any,
    upstream: SwitchableUpstream | FakeUpstream,
    spool_dir: Path,
    overrides: dict[str, Any] = OUTAGE,
    spool: dict[str, Any] | None = None,
) -> TestClient[Any, Any]:
    """A relay test client with a SQLite spool pointing at `upstream`, its sends watched."""
    config = sqlite_relay_config(upstream.url, spool_dir, overrides, spool)
    watch = WatchedUpstream(UpstreamRouter(config.upstream))
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, upstream=watch))
    watch.forwarder = state_of(client).forwarder
    if isinstance(upstream, SwitchableUpstream):
        upstream.watch = watch
    return client


# -- outage mode -------------------------------------------------------------------------


async def test_outage_probes_one_request_at_a_time_then_recovers(
    aiohttp_client: Any, switchable: SwitchableUpstream, tmp_path: Path
) -> None:
    """After 3 failures only one request is in flight at a time; on recovery all 30 arrive and the gauge drops."""
    client = await relay_for(aiohttp_client, switchable, tmp_path / "spool")
    state = state_of(client)
    ids = [uuid.uuid4().hex for _ in range(30)]
    responses = await asyncio.gather(*(post(client, event_envelope(i)) for i in ids))
    assert [r.status for r in responses] == [200] * 30

    await eventually(lambda: state.forwarder.outage, what="outage mode")
    assert await scrape(client, "relay_upstream_outage") == 1.0
    watch = switchable.watch
    assert watch is not None
    await eventually(lambda: len(watch.outage_sends) >= 10, what="ten probes")
    assert set(watch.outage_sends) == {1}, watch.outage_sends  # never two probes at once
    assert switchable.outage_arrivals() != []
    assert set(switchable.outage_arrivals()) == {1}, str(switchable.arrivals)  # and nothing else at the server
    assert state.spool.pending() == 30

    loop = asyncio.get_running_loop()
    switchable.up = True
    recovered_at = loop.time()
    await eventually(lambda: len(switchable.delivered) >= 30, timeout=3.0, what="all 30 delivered")
    assert loop.time() - recovered_at < 1.0
    await eventually(lambda: state.spool.pending() == 0, what="the spool to empty")
    assert sorted(switchable.delivered) == sorted(ids)
    assert not state.forwarder.outage
    assert await scrape(client, "relay_upstream_outage") == 0.0
    assert await scrape(client, "relay_spool_entries") == 0.0
    assert await scrape(client, "relay_spool_drained_total") == 30.0
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 30}
    assert received_total(state) == sum(outcome_totals(state).values()) == 30
    assert db_count(tmp_path / "spool") == 0


async def test_recovery_releases_entries_waiting_out_long_backoffs(
    aiohttp_client: Any, switchable: SwitchableUpstream, tmp_path: Path
) -> None:
    """With 5 s retry backoffs, the backlog is delivered at once when a probe succeeds, not as each backoff ends."""
    overrides = {"outage": {"after_failures": 3, "probe_max": "200ms"}, "retry": {"initial": "5s", "max": "5s"}}
    client = await relay_for(aiohttp_client, switchable, tmp_path / "spool", overrides)
    state = state_of(client)
    ids = [uuid.uuid4().hex for _ in range(30)]
    responses = await asyncio.gather(*(post(client, event_envelope(i)) for i in ids))
    assert [r.status for r in responses] == [200] * 30
    await eventually(lambda: state.forwarder.outage, what="outage mode")
    await eventually(lambda: len(switchable.arrivals) >= 30, what="a first attempt for each envelope")
    switchable.up = True
    await eventually(lambda: len(switchable.delivered) >= 1, timeout=6.0, what="a successful probe")
    loop = asyncio.get_running_loop()
    first = loop.time()
    await eventually(lambda: len(switchable.delivered) >= 30, timeout=6.0, what="all 30 delivered")
    assert loop.time() - first < 1.0, "the backlog trickled out with the backoffs instead of being released"
    assert sorted(switchable.delivered) == sorted(ids)
    await eventually(lambda: state.spool.pending() == 0, what="the spool to empty")
    assert received_total(state) == sum(outcome_totals(state).values()) == 30


async def test_upstream_rejection_is_final_with_sqlite_spool(
    aiohttp_client: Any, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A 400 settles the envelope as invalid/upstream_rejected once; it is deleted from disk, never retried."""
    upstream.script = [Reply(400)]
    client = await relay_for(aiohttp_client, upstream, tmp_path / "spool")
    state = state_of(client)
    assert (await post(client, event_envelope("4" * 32))).status == 200
    await eventually(lambda: state.spool.pending() == 0, what="the spool to empty")
    await asyncio.sleep(0.1)  # retries would come within 50 ms
    assert len(upstream.attempts) == 1
    assert upstream.received == []
    assert nonzero(outcome_totals(state)) == {("invalid", "upstream_rejected", "error"): 1}
    assert received_total(state) == 1
    assert db_count(tmp_path / "spool") == 0
    assert not state.forwarder.outage


# -- a full spool and expiry ---------------------------------------------------------------


async def test_full_spool_answers_503(aiohttp_client: Any, switchable: SwitchableUpstream, tmp_path: Path) -> None:
    """With max_disk 1 KiB and the upstream down, the second ~700-byte envelope gets 503 + Retry-After."""
    client = await relay_for(aiohttp_client, switchable, tmp_path / "spool", spool={"max_disk": "1KiB"})
    state = state_of(client)
    message = "m" * 600
    first = await post(client, event_envelope("1" * 32, message))
    assert first.status == 200
    assert 600 < state.spool.pending_bytes() <= 1024
    second = await post(client, event_envelope("2" * 32, message))
    assert second.status == 503
    assert second.headers["Retry-After"] == "10"
    assert "queue" in (await second.json())["detail"]
    assert nonzero(outcome_totals(state)) == {("dropped", "queue_overflow", "error"): 1}
    assert state.spool.pending() == 1

    switchable.up = True
    await eventually(lambda: state.spool.pending() == 0, what="the spool to empty")
    third = await post(client, event_envelope("3" * 32, message))
    assert third.status == 200
    await eventually(lambda: len(switchable.delivered) == 2, what="the third envelope")
    await eventually(lambda: state.spool.pending() == 0, what="the spool to empty")
    assert switchable.delivered == ["1" * 32, "3" * 32]
    assert nonzero(outcome_totals(state)) == {
        ("dropped", "queue_overflow", "error"): 1,
        ("forwarded", "none", "error"): 2,
    }
    assert received_total(state) == sum(outcome_totals(state).values()) == 3


async def test_expired_entry_is_dropped_with_outcome_expired(
    aiohttp_client: Any, switchable: SwitchableUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_age 300ms and the upstream down, the envelope leaves the spool as dropped/expired."""
    monkeypatch.setattr(sqlite_module, "_EXPIRY_INTERVAL", 0.05)
    client = await relay_for(aiohttp_client, switchable, tmp_path / "spool", spool={"max_age": "300ms"})
    state = state_of(client)
    assert (await post(client, event_envelope("5" * 32))).status == 200
    loop = asyncio.get_running_loop()
    posted = loop.time()
    await eventually(lambda: state.spool.pending() == 0, timeout=3.0, what="the entry to expire")
    assert loop.time() - posted >= 0.25
    assert nonzero(outcome_totals(state)) == {("dropped", "expired", "error"): 1}
    assert received_total(state) == 1
    assert switchable.arrivals != []
    assert switchable.delivered == []
    assert await scrape(client, "relay_spool_entries") == 0.0
    assert await scrape(client, "relay_spool_oldest_entry_age_seconds") == 0.0
    assert db_count(tmp_path / "spool") == 0
