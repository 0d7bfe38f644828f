"""`relay run --workers N` as real processes: one port, spool partitions, signals, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..support import FakeUpstream, Reply
from .test_process import (
    RelayProcess,
    config_yaml,
    event_envelope,
    free_port,
    post_envelope,
    run_relay,
    spawn_relay,
)

StartWorkers = Callable[..., Any]


@pytest.fixture
async def start_workers(tmp_path: Path) -> AsyncIterator[StartWorkers]:
    """Start `relay run --workers N` from config text; teardown stops (or kills) supervisors and workers."""
    started: list[RelayProcess] = []

    async def start(config_text: str, port: int, workers: int = 2) -> RelayProcess:
        path = tmp_path / f"relay-{len(started)}.yml"
        relay = await spawn_relay(path, config_text, port, "--workers", str(workers))
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.proc.returncode is None:
            relay.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(relay.proc.wait(), 15)
            except TimeoutError:
                relay.proc.kill()
                await relay.proc.wait()
                for pid in worker_pids(relay, every=True):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if relay._reader is not None:
            relay._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay._reader


def records(relay: RelayProcess, message: str) -> list[dict[str, Any]]:
    """Every log record with this message, in order."""
    return [r for r in relay.logs if r.get("msg") == message]


def worker_pids(relay: RelayProcess, *, every: bool = False) -> list[int]:
    """Pids from the supervisor's `worker started` lines: the latest per worker, or all of them."""
    latest: dict[int, int] = {}
    pids: list[int] = []
    for record in records(relay, "worker started"):
        latest[record["worker"]] = record["pid"]
        pids.append(record["pid"])
    return pids if every else [latest[index] for index in sorted(latest)]


async def poll(check: Callable[[], bool], what: str, relay: RelayProcess, timeout: float = 20.0) -> None:
    """Wait until `check()` holds; fail with the relay's stderr after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; stderr:\n" + "\n".join(relay.raw))
        await asyncio.sleep(0.02)


async def wait_workers_ready(relay: RelayProcess, count: int) -> None:
    """Wait until the current process of each of `count` workers said it is ready."""

    def ready() -> bool:
        pids = worker_pids(relay)
        ready_pids = {r["pid"] for r in records(relay, "worker ready")}
        return len(pids) == count and all(pid in ready_pids for pid in pids)

    await poll(ready, f"{count} ready workers", relay)


async def metrics_by_worker(relay: RelayProcess, count: int) -> dict[int, str]:
    """Scrape /metrics over fresh connections until every worker has answered once; {worker: text}."""
    found: dict[int, str] = {}
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        while len(found) < count:
            assert time.monotonic() < deadline, f"only workers {sorted(found)} answered /metrics"
            async with session.get(f"{relay.url}/metrics") as resp:
                text = await resp.text()
            info = next(line for line in text.splitlines() if line.startswith("relay_worker_info{"))
            found[int(info.split('worker="')[1].split('"')[0])] = text
    return found


def metric_sum(text: str, name: str) -> float:
    """The sum of a metric's samples over all label sets."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def post_many(relay: RelayProcess, ids: list[str]) -> None:
    """POST one event envelope per id, each over a new connection (so the kernel spreads them), 16 at a time."""
    connector = aiohttp.TCPConnector(force_close=True, limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(post_envelope(session, relay, event_envelope(i, f"event {i}")) for i in ids))


def event_ids(count: int, prefix: str = "") -> list[str]:
    """`count` distinct 32-hex-digit event ids."""
    return [f"{prefix}{n:0{32 - len(prefix)}x}" for n in range(count)]


async def test_two_workers_share_the_port_and_deliver_everything(
    start_workers: StartWorkers, upstream: FakeUpstream
) -> None:
    """Two workers on one port both take connections, and every envelope reaches the upstream once."""
    port = free_port()
    relay = await start_workers(config_yaml(port, upstream.url), port, workers=2)
    await wait_workers_ready(relay, 2)
    ids = event_ids(200)
    await post_many(relay, ids)
    await upstream.wait_for(len(ids), timeout=30)
    scraped = await metrics_by_worker(relay, 2)
    received = {worker: metric_sum(text, "relay_items_received_total") for worker, text in scraped.items()}
    assert all(count > 0 for count in received.values()), received
    assert sum(received.values()) == len(ids), received
    assert sorted(r.envelope.event_id or "" for r in upstream.received) == ids
    code, _ = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)


async def test_restart_with_one_worker_drains_the_other_partitions(
    start_workers: StartWorkers, aiohttp_server: Any, tmp_path: Path
) -> None:
    """Each worker spools into its own partition; a later single process delivers what both left behind."""
    upstream_port = free_port()  # nothing listens there yet: the upstream is down
    port = free_port()
    text = config_yaml(port, f"http://127.0.0.1:{upstream_port}", shutdown_timeout="1s")
    relay = await start_workers(text, port, workers=2)
    await wait_workers_ready(relay, 2)
    ids = event_ids(60, prefix="ab")
    await post_many(relay, ids)
    code, _ = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)
    partitions = [tmp_path / "spool" / f"worker-{i}" for i in range(2)]
    held = []
    for partition in partitions:
        with contextlib.closing(sqlite3.connect(partition / "spool.db")) as db:
            held.append(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    assert all(count > 0 for count in held) and sum(held) == len(ids), held
    assert not (tmp_path / "spool" / "spool.db").exists()

    upstream = FakeUpstream()
    await aiohttp_server(upstream.app(), port=upstream_port)
    single = await start_workers(text, port, workers=1)
    await upstream.wait_for(len(ids), timeout=30)
    assert sorted(r.envelope.event_id or "" for r in upstream.received) == ids
    await poll(lambda: not any(p.exists() for p in partitions), "adopted partitions to be deleted", single)
    adopted = records(single, "orphaned spool partition adopted")
    assert sorted((r["path"], r["moved"], r["left"]) for r in adopted) == [
        (f"spool/worker-{i}", held[i], 0) for i in range(2)
    ]
    code, _ = await single.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(single.raw)


async def test_sigterm_drains_every_worker_then_exits_zero(start_workers: StartWorkers, upstream: FakeUpstream) -> None:
    """SIGTERM to the supervisor: every worker drains its queue to a slow upstream, and the supervisor exits 0."""
    upstream.script.extend(Reply(delay=1.0) for _ in range(100))
    port = free_port()
    relay = await start_workers(config_yaml(port, upstream.url, shutdown_timeout="5s"), port, workers=2)
    await wait_workers_ready(relay, 2)
    ids = event_ids(40, prefix="cd")
    await post_many(relay, ids)
    code, took = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)
    assert took < 5 + 3, f"shutdown took {took:.1f}s with shutdown_timeout 5s"
    assert sorted(r.envelope.event_id or "" for r in upstream.received) == ids
    stopped = records(relay, "relay stopped")
    assert sorted(r["worker"] for r in stopped) == [0, 1], relay.raw
    assert all(r["drained"] is True and r["lost_envelopes"] == 0 for r in stopped), stopped
    assert [r["exit_code"] for r in records(relay, "supervisor stopped")] == [0]


async def test_killed_worker_is_restarted(start_workers: StartWorkers, upstream: FakeUpstream) -> None:
    """A worker killed with SIGKILL is started again (new pid), and both workers serve afterwards."""
    port = free_port()
    relay = await start_workers(config_yaml(port, upstream.url), port, workers=2)
    await wait_workers_ready(relay, 2)
    first = worker_pids(relay)
    os.kill(first[1], signal.SIGKILL)
    await poll(lambda: worker_pids(relay)[1] != first[1], "worker 1 to be restarted", relay)
    await wait_workers_ready(relay, 2)
    assert worker_pids(relay)[0] == first[0]
    restarted = records(relay, "worker exited unexpectedly, restarting it")
    assert [(r["worker"], r["exit_code"]) for r in restarted] == [(1, -signal.SIGKILL)]
    assert sorted(await metrics_by_worker(relay, 2)) == [0, 1]
    ids = event_ids(20, prefix="ef")
    await post_many(relay, ids)
    await upstream.wait_for(len(ids))
    code, _ = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)


async def test_sighup_reloads_rules_in_every_worker(start_workers: StartWorkers, upstream: FakeUpstream) -> None:
    """SIGHUP to the supervisor is forwarded: each worker logs `rules reloaded` (trigger SIGHUP)."""
    port = free_port()
    relay = await start_workers(config_yaml(port, upstream.url), port, workers=2)
    await wait_workers_ready(relay, 2)
    relay.proc.send_signal(signal.SIGHUP)

    def reloaded() -> list[int]:
        return sorted(r["worker"] for r in records(relay, "rules reloaded") if r["trigger"] == "SIGHUP")

    await poll(lambda: reloaded() == [0, 1], "both workers to reload their rules", relay)
    assert relay.proc.returncode is None
    code, _ = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)


async def test_admin_listener_only_in_worker_zero(start_workers: StartWorkers, upstream: FakeUpstream) -> None:
    """With the admin listener on, worker 0 serves it and worker 1 starts without a port conflict."""
    port, admin_port = free_port(), free_port()
    text = config_yaml(port, upstream.url) + f"admin: {{enabled: true, port: {admin_port}}}\n"
    relay = await start_workers(text, port, workers=2)
    await wait_workers_ready(relay, 2)
    assert [r["worker"] for r in records(relay, "admin listening")] == [0]
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{admin_port}/") as resp:
        assert resp.status == 200
    code, _ = await relay.stop(signal.SIGTERM, timeout=20)
    assert code == 0, "\n".join(relay.raw)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_invalid_worker_count_exits_2(tmp_path: Path, value: str) -> None:
    """`relay run --workers` below 1 (or not a number) is a usage error: exit 2 with a clear message."""
    path = tmp_path / "relay.yml"
    path.write_text(config_yaml(free_port(), "https://sentry.example.com"))
    result = run_relay("run", "--config", str(path), "--workers", value)
    assert result.returncode == 2
    assert "argument --workers:" in result.stderr and "Traceback" not in result.stderr


def test_workers_need_a_fixed_port(tmp_path: Path) -> None:
    """More than one worker with `listen.port: 0` would give each worker its own port: exit 2."""
    path = tmp_path / "relay.yml"
    path.write_text(config_yaml(0, "https://sentry.example.com"))
    result = run_relay("run", "--config", str(path), "--workers", "2")
    assert result.returncode == 2
    assert f"{path}: listen.port: 2 workers need a fixed port" in result.stderr
