"""The relay as a real process: `python -m relay run`, readiness, SIGTERM drain, check-config and --version."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from relay import __version__
from relay.ingest import STATE
from relay.ingest.handlers import handle_ready

from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    Reply,
    auth_header,
    envelope_bytes,
    free_port,
    outcome_totals,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test environment, with this checkout first on the import path."""
    env = {k: v for k, v in os.environ.items() if k != "RELAY_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def config_yaml(
    port: int,
    upstream_url: str,
    *,
    shutdown_timeout: str = "5s",
    upstream_dsn: bool = True,
    upstream_timeout: str = "20s",
    spool: str = "sqlite",
) -> str:
    """A config for a process relay listening on `port` (its spool lives in the process's working dir)."""
    dsn = (
        f'\n    upstream_dsn: "{upstream_url.replace("://", f"://{UPSTREAM_KEY}@")}/{UPSTREAM_PROJECT}"'
        if upstream_dsn
        else ""
    )
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: {upstream_url}
  timeout: {upstream_timeout}
  retry: {{initial: 10ms, max: 50ms, max_elapsed: 60s}}
  batch: {{linger: 1ms}}
shutdown_timeout: {shutdown_timeout}
log: {{level: info, format: json}}
spool: {{backend: {spool}, path: ./spool}}
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]{dsn}
"""


@dataclass
class RelayProcess:
    """A `python -m relay run` child process and what it logged."""

    proc: asyncio.subprocess.Process
    port: int
    logs: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL of the relay."""
        return f"http://127.0.0.1:{self.port}"

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(text)
                if isinstance(record, dict):
                    self.logs.append(record)

    def log(self, message: str) -> dict[str, Any] | None:
        """The first log record with this message."""
        return next((r for r in self.logs if r.get("msg") == message), None)

    async def wait_log(self, message: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for a log record with this message."""
        deadline = time.monotonic() + timeout
        while (record := self.log(message)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {message!r} log; stderr:\n" + "\n".join(self.raw))
            await asyncio.sleep(0.01)
        return record

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 20.0) -> None:
        """Poll /readyz until it answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.returncode is not None:
                raise AssertionError(f"relay exited with {self.proc.returncode}:\n" + "\n".join(self.raw))
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{self.url}/readyz") as resp:
                    if resp.status == 200:
                        assert (await resp.json())["status"] == "ready"
                        return
            if time.monotonic() > deadline:
                raise AssertionError("relay never became ready:\n" + "\n".join(self.raw))
            await asyncio.sleep(0.05)

    async def stop(self, sig: int, timeout: float) -> tuple[int, float]:
        """Send a signal and wait for exit; return (exit code, seconds taken)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return code, time.monotonic() - started


async def spawn_relay(path: Path, config_text: str, port: int, *args: str) -> RelayProcess:
    """Write the config to `path` and start `python -m relay run --config path *args` in its folder."""
    path.write_text(config_text)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "relay", "run", "--config", str(path), *args),
        cwd=str(path.parent),
        env=subprocess_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    relay = RelayProcess(proc, port)
    relay._reader = asyncio.create_task(relay._read_stderr())
    return relay


@pytest.fixture
async def start_relay(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start relay processes from config text; any still running at teardown are killed."""
    started: list[RelayProcess] = []

    async def start(config_text: str, port: int) -> RelayProcess:
        relay = await spawn_relay(tmp_path / f"relay-{len(started)}.yml", config_text, port)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.proc.returncode is None:
            relay.proc.kill()
            await relay.proc.wait()
        if relay._reader is not None:
            relay._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay._reader


def event_envelope(event_id: str, message: str) -> bytes:
    """An envelope with one event, a dsn header and a trace header carrying the local key."""
    return envelope_bytes(
        {
            "event_id": event_id,
            "dsn": f"http://{KEY}@127.0.0.1/{PROJECT}",
            "trace": {"public_key": KEY, "trace_id": "e" * 32},
        },
        ({"type": "event"}, orjson.dumps({"event_id": event_id, "message": message})),
    )


async def post_envelope(session: aiohttp.ClientSession, relay: RelayProcess, body: bytes) -> None:
    """POST an envelope to the relay and require a 200."""
    async with session.post(f"{relay.url}/api/{PROJECT}/envelope/", data=body, headers=auth_header()) as resp:
        assert resp.status == 200, await resp.text()


async def test_sigterm_drains_queue_to_slow_upstream(start_relay: Any, upstream: FakeUpstream) -> None:
    """SIGTERM while the upstream is slow: the queued envelope is still delivered, then the process exits 0."""
    upstream.script.append(Reply(delay=1.5))
    port = free_port()
    relay = await start_relay(config_yaml(port, upstream.url, shutdown_timeout="5s"), port)
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        await post_envelope(session, relay, event_envelope("a" * 32, "flushed on shutdown"))
    code, took = await relay.stop(signal.SIGTERM, timeout=15)
    assert code == 0, "\n".join(relay.raw)
    assert took < 5 + 2, f"shutdown took {took:.1f}s, over shutdown_timeout"
    assert took >= 1.0, "the relay exited before the slow upstream answered"
    assert len(upstream.received) == 1
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert rec.envelope.event_id == "a" * 32
    assert rec.envelope.headers["trace"]["public_key"] == UPSTREAM_KEY
    assert KEY.encode() not in rec.envelope.serialize()
    stopped = relay.log("relay stopped")
    assert stopped is not None, relay.raw
    assert stopped["drained"] is True
    assert stopped["lost_envelopes"] == 0


async def test_not_ready_once_shutdown_begins(start_relay: Any, upstream: FakeUpstream) -> None:
    """After SIGTERM the relay stops reporting ready: /readyz is 503 or no longer reachable, never 200."""
    upstream.script.append(Reply(delay=2.0))
    port = free_port()
    relay = await start_relay(config_yaml(port, upstream.url, shutdown_timeout="5s"), port)
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        await post_envelope(session, relay, event_envelope("b" * 32, "keeps the drain busy"))
        relay.proc.send_signal(signal.SIGTERM)
        shutting = await relay.wait_log("shutting down")
        assert shutting["queued"] >= 0
        statuses: list[int | str] = []
        while relay.proc.returncode is None and len(statuses) < 20:
            try:
                async with session.get(f"{relay.url}/readyz") as resp:
                    statuses.append(resp.status)
            except aiohttp.ClientError:
                statuses.append("refused")
            await asyncio.sleep(0.05)
        assert 200 not in statuses, statuses
        code = await asyncio.wait_for(relay.proc.wait(), 15)
    assert code == 0
    assert len(upstream.received) == 1


@dataclass
class BlackHole:
    """A TCP server that accepts requests and never answers."""

    server: asyncio.Server
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def black_hole() -> AsyncIterator[BlackHole]:
    """An upstream that hangs every request."""
    hole: BlackHole

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hole.writers.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    hole = BlackHole(server)
    yield hole
    server.close()
    for writer in hole.writers:
        writer.close()
    await server.wait_closed()


async def test_sigterm_with_hanging_upstream_exits_within_shutdown_timeout(
    start_relay: Any, black_hole: BlackHole
) -> None:
    """A never-answering upstream can't hold the process past shutdown_timeout; the memory queue's loss is logged."""
    port = free_port()
    relay = await start_relay(
        config_yaml(port, black_hole.url, shutdown_timeout="2s", upstream_timeout="30s", spool="memory"), port
    )
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        await post_envelope(session, relay, event_envelope("c" * 32, "never delivered"))
    deadline = time.monotonic() + 5
    while not black_hole.writers and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert black_hole.writers, "the relay never tried the upstream"
    code, took = await relay.stop(signal.SIGTERM, timeout=15)
    assert code == 0, "\n".join(relay.raw)
    assert 1.5 <= took < 2 + 2.5, f"shutdown took {took:.1f}s with shutdown_timeout 2s"
    stopped = relay.log("relay stopped")
    assert stopped is not None, relay.raw
    assert stopped["drained"] is False
    assert stopped["lost_envelopes"] == 1


async def test_sigint_drains_to_file_sink(start_relay: Any, tmp_path: Path) -> None:
    """With a file:// upstream, SIGINT flushes the envelope to the JSON-lines file and exits 0."""
    sink = tmp_path / "out" / "upstream.jsonl"
    port = free_port()
    relay = await start_relay(config_yaml(port, f"file://{sink}", upstream_dsn=False), port)
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        for n in range(3):
            await post_envelope(session, relay, event_envelope(f"{n}" * 32, f"to the file {n}"))
    code, _ = await relay.stop(signal.SIGINT, timeout=15)
    assert code == 0, "\n".join(relay.raw)
    records = [orjson.loads(line) for line in sink.read_bytes().splitlines()]
    assert [r["headers"]["event_id"] for r in records] == [f"{n}" * 32 for n in range(3)]
    assert all(r["project"] == str(PROJECT) for r in records)
    assert [r["items"][0]["payload"]["message"] for r in records] == [f"to the file {n}" for n in range(3)]


async def test_readiness_is_503_while_draining_in_process(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve(): after SIGTERM, while the forwarder drains a slow send, readiness answers 503."""
    import relay.server as server_module

    apps: list[web.Application] = []
    real_create_app = server_module.create_app

    def capturing_create_app(*args: Any, **kwargs: Any) -> web.Application:
        app = real_create_app(*args, **kwargs)
        apps.append(app)
        return app

    monkeypatch.setattr(server_module, "create_app", capturing_create_app)
    upstream.script.append(Reply(delay=1.0))
    port = free_port()
    text = config_yaml(port, upstream.url, shutdown_timeout="5s").replace("level: info", "level: warning")
    from relay.config import parse_config

    config = parse_config(text, "inproc.yml", {})
    task = asyncio.create_task(server_module.serve(config))
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                assert time.monotonic() < deadline and not task.done(), "in-process relay never became ready"
                await asyncio.sleep(0.02)
            async with session.post(
                f"http://127.0.0.1:{port}/api/{PROJECT}/envelope/",
                data=event_envelope("d" * 32, "drained"),
                headers=auth_header(),
            ) as resp:
                assert resp.status == 200
        while not upstream.attempts:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        handler = signal.getsignal(signal.SIGTERM)
        assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None), "serve() installed no SIGTERM handler"
        os.kill(os.getpid(), signal.SIGTERM)

        (app,) = apps
        state = app[STATE]
        deadline = time.monotonic() + 5
        while state.ready:
            assert time.monotonic() < deadline, "readiness never turned off"
            await asyncio.sleep(0.005)
        assert not upstream.received, "the drain should still be waiting on the slow upstream"
        response = await handle_ready(make_mocked_request("GET", "/readyz", app=app))
        assert response.status == 503
        assert orjson.loads(response.body) == {"status": "not_ready", "is_healthy": False}

        await asyncio.wait_for(task, 10)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    assert len(upstream.received) == 1
    assert outcome_totals(state).get(("forwarded", "none", "error")) == 1


# -- check-config and --version as processes ----------------------------------------------------------


def run_relay(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m relay ...` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or subprocess_env(),
        cwd=str(cwd or REPO_ROOT),
    )


def test_version_flag() -> None:
    """`python -m relay --version` prints the version and exits 0."""
    result = run_relay("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"relay {__version__}"


def test_check_config_valid_file(tmp_path: Path) -> None:
    """check-config on a valid file exits 0 and prints a summary."""
    path = tmp_path / "ok.yml"
    path.write_text(config_yaml(3456, "https://sentry.example.com"))
    result = run_relay("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: OK")
    assert "listen: 127.0.0.1:3456" in result.stdout
    assert f"{PROJECT}: 1 key(s) -> https://sentry.example.com/{UPSTREAM_PROJECT}" in result.stdout
    assert KEY not in result.stdout and UPSTREAM_KEY not in result.stdout


def test_check_config_invalid_file_lists_every_problem(tmp_path: Path) -> None:
    """check-config on an invalid file exits 2 and prints each problem with file and dotted key path."""
    path = tmp_path / "bad.yml"
    path.write_text(
        """
listen: {port: -1}
upstream: {url: 'https://sentry.example.com', timeout: forever, concurency: 3}
projects:
  - id: 42
  - id: 43
    keys: [k]
    upstream_dsn: "https://sentry.example.com/notanumber"
log: {level: chatty}
"""
    )
    result = run_relay("check-config", "--config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for key_path in (
        "listen.port",
        "upstream.timeout",
        "upstream.concurency",
        "projects[0].keys",
        "projects[1].upstream_dsn",
        "log.level",
    ):
        assert f"{path}: {key_path}: " in result.stderr, (key_path, result.stderr)
    unknown = next(line for line in result.stderr.splitlines() if "upstream.concurency" in line)
    assert "concurrency" in unknown and "timeout" in unknown
    assert "6 problem(s)" in result.stderr


def test_check_config_never_tracebacks_on_bad_values(tmp_path: Path) -> None:
    """Wrongly typed values are problems with exit 2, not a Python traceback (exit 1)."""
    path = tmp_path / "types.yml"
    path.write_text("projects: [{id: 1, keys: [a], upstream_dsn: [not, a, string]}]\n")
    result = run_relay("check-config", "--config", str(path))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    assert "projects[0].upstream_dsn" in result.stderr


def test_relay_config_env_var_is_default(tmp_path: Path) -> None:
    """Without --config, RELAY_CONFIG names the config file."""
    path = tmp_path / "env.yml"
    path.write_text(config_yaml(3789, "https://sentry.example.com"))
    result = run_relay("check-config", env=subprocess_env(RELAY_CONFIG=str(path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: OK")
    missing = run_relay("check-config", env=subprocess_env(RELAY_CONFIG=str(tmp_path / "gone.yml")), cwd=tmp_path)
    assert missing.returncode == 2
    assert "gone.yml" in missing.stderr


def test_run_refuses_invalid_config(tmp_path: Path) -> None:
    """`relay run` with an invalid config exits 2 at once, listing the problems."""
    path = tmp_path / "bad.yml"
    path.write_text("upstream: {url: nowhere}\n")
    result = run_relay("run", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}: upstream.url: " in result.stderr
