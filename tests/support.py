"""Shared test machinery: a fake upstream (a real aiohttp server) and relays built from config text."""

from __future__ import annotations

import asyncio
import gzip
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from relay.app import create_app
from relay.config import Config, parse_config
from relay.envelope import Envelope, parse_envelope
from relay.ingest import STATE, RelayState

KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "abcdefabcdefabcdefabcdefabcdefab"
UPSTREAM_KEY = "fedcba9876543210fedcba9876543210"
PROJECT = 42
UPSTREAM_PROJECT = 4501


@dataclass
class Received:
    """One request the fake upstream got."""

    path: str
    headers: dict[str, str]
    envelope: Envelope
    at: float


@dataclass
class Reply:
    """A scripted answer: status and headers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeUpstream:
    """A real HTTP server standing in for Sentry: records envelopes, answers from a script."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts: list[float] = []
        self.script: list[Reply] = []
        self.url = ""
        self.arrived = asyncio.Event()

    def app(self) -> web.Application:
        """The aiohttp app serving `/api/<project>/envelope/`."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_post("/api/{project}/envelope/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        self.attempts.append(loop.time())
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = await request.read()  # aiohttp undoes the gzip Content-Encoding for us
        if reply.status == 200:
            self.received.append(Received(request.path, dict(request.headers), parse_envelope(body), loop.time()))
            self.arrived.set()
        return web.json_response(
            {} if reply.status == 200 else {"detail": "scripted"}, status=reply.status, headers=reply.headers
        )

    def items(self, item_type: str | None = None) -> list[Any]:
        """Every item received (of a type), payload parsed when JSON."""
        found = []
        for rec in self.received:
            for item in rec.envelope.items:
                if item_type is None or item.type == item_type:
                    found.append(item)
        return found

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` envelopes have been accepted."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"upstream got {len(self.received)} envelopes, expected {count}")
            await asyncio.sleep(0.01)


def config_text(
    upstream_url: str,
    extra: str = "",
    *,
    projects: str | None = None,
    rules: str = "[]",
    spool: str = "{backend: memory}",
) -> str:
    """A YAML config with project 42 routed to the fake upstream's project 4501.

    Scrubbing is off (`rules: []`) unless `rules` names packs: transport tests compare bytes.
    The spool is in memory unless `spool` says otherwise (a YAML flow mapping).
    """
    if projects is None:
        projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{upstream_url.replace("://", f"://{UPSTREAM_KEY}@")}/{UPSTREAM_PROJECT}"
"""
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream:
  url: {upstream_url}
  timeout: 5s
  retry: {{initial: 10ms, max: 50ms, multiplier: 2, max_elapsed: 30s}}
  batch: {{linger: 1ms}}
shutdown_timeout: 5s
log: {{level: warning}}
rules: {rules}
spool: {spool}
{projects}
{extra}
"""


def make_config(upstream_url: str, extra: str = "", **kwargs: Any) -> Config:
    """Parse `config_text` through the real loader."""
    return parse_config(config_text(upstream_url, extra, **kwargs), "test.yml", {})


def envelope_bytes(headers: dict[str, Any], *items: tuple[dict[str, Any], bytes]) -> bytes:
    """Build envelope bytes by hand (explicit lengths)."""
    parts = [orjson.dumps(headers), b"\n"]
    for item_headers, payload in items:
        parts += [orjson.dumps({**item_headers, "length": len(payload)}), b"\n", payload, b"\n"]
    return b"".join(parts)


def auth_header(key: str = KEY) -> dict[str, str]:
    """The X-Sentry-Auth header an SDK sends."""
    return {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=test/1.0"}


def gzipped(data: bytes) -> bytes:
    """gzip-compress data."""
    return gzip.compress(data)


def outcome_totals(state: RelayState) -> dict[tuple[str, str, str], float]:
    """relay_outcomes_total as {(outcome, reason, category): value}."""
    totals: dict[tuple[str, str, str], float] = {}
    for metric in state.metrics.outcomes.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                totals[(labels["outcome"], labels["reason"], labels["category"])] = sample.value
    return totals


def received_total(state: RelayState) -> float:
    """Sum of relay_items_received_total."""
    return sum(s.value for m in state.metrics.items_received.collect() for s in m.samples if s.name.endswith("_total"))


class BackgroundRelay:
    """A fake upstream and a relay running on their own event loop in a thread, for sync SDK clients."""

    def __init__(self, extra: str = "", **config_kwargs: Any) -> None:
        self.upstream = FakeUpstream()
        self._extra = extra
        self._config_kwargs = config_kwargs
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="relay-test-loop", daemon=True)
        self.port = 0
        self.state: RelayState | None = None
        self._runners: list[web.AppRunner] = []

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the relay's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def dsn(self) -> str:
        """The DSN applications use."""
        return f"http://{KEY}@127.0.0.1:{self.port}/{PROJECT}"

    def start(self) -> BackgroundRelay:
        """Start upstream then relay."""
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        up_runner = web.AppRunner(self.upstream.app(), access_log=None)
        await up_runner.setup()
        site = web.TCPSite(up_runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(up_runner)
        self.upstream.url = f"http://127.0.0.1:{up_runner.addresses[0][1]}"
        config = make_config(self.upstream.url, self._extra, **self._config_kwargs)
        app = create_app(config)
        self.state = app[STATE]
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.insert(0, runner)
        self.port = runner.addresses[0][1]

    def stop(self) -> None:
        """Drain and stop the relay, then the upstream and the loop."""

        async def _stop() -> None:
            for runner in self._runners:
                await runner.cleanup()

        self.call(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Block until the upstream accepted `count` envelopes."""
        self.call(self.upstream.wait_for(count, timeout), timeout + 5)


@contextmanager
def background_relay(extra: str = "", **kwargs: Any) -> Iterator[BackgroundRelay]:
    """A started BackgroundRelay, stopped afterwards."""
    relay = BackgroundRelay(extra, **kwargs).start()
    try:
        yield relay
    finally:
        relay.stop()


class FakeClock:
    """A clock that only moves when told to; sleep() advances it."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self.now

    def time(self) -> float:
        """The fake wall clock."""
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def relay_process(config_path: Any, port: int, timeout: float = 30.0) -> Iterator[Any]:
    """`relay run --config config_path` as a real process, once it accepts connections on `port`; stopped with
    SIGTERM on the way out (its stderr is `proc.stderr_text` afterwards)."""

    proc: Any = subprocess.Popen(
        [sys.executable, "-m", "relay", "run", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the relay did not start"
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        _, proc.stderr_text = proc.communicate(timeout=30)
