"""Replicas sharing quotas through the real Redis: three `relay run` processes, one quota, and Redis dying mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import redis

from ..support import KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, auth_header
from .test_process import RelayProcess, event_envelope, free_port

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def replica_config(port: int, upstream_url: str, redis_url: str, prefix: str, limit: int, extra: str = "") -> str:
    """A relay whose project 42 has one error quota, counted in Redis under `prefix`."""
    dsn = f"{upstream_url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream: {{url: {upstream_url}, timeout: 10s, retry: {{initial: 10ms, max: 50ms}}, batch: {{linger: 1ms}}}}
shutdown_timeout: 5s
log: {{level: info, format: json}}
rules: []
spool: {{backend: memory}}
outcomes: {{client_reports: false}}
ratelimit: {{backend: redis, url: "{redis_url}", key_prefix: "{prefix}", timeout: 100ms, reconnect: 1s}}
{extra}
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}"
    quotas: [{{id: shared, categories: [error], scope: project, limit: {limit}, window: 1h}}]
"""


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    """The machine's Redis (started by .ci/run); a test that needs it fails, never skips, without it."""
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {SHARED_REDIS} is not reachable ({exc}); .ci/run starts it")
    yield client
    client.close()


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own on `port`, which the test may kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed")
    proc = start_redis(binary, port)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def start_redis(binary: str, port: int) -> subprocess.Popen[bytes]:
    """Start redis-server on `port` and wait until it answers."""
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                break
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"private redis-server on port {port} did not start")
        time.sleep(0.05)
    client.close()
    return proc


def wait_out_window_edge(window: int = 3600, margin: float = 30.0) -> None:
    """Quotas use windows aligned to the clock: don't start a run that would straddle two of them."""
    left = window - time.time() % window
    if left < margin:
        time.sleep(left + 0.5)


async def send(session: aiohttp.ClientSession, relay: RelayProcess, index: int) -> int:
    """POST one error envelope; return the status."""
    body = event_envelope(uuid.uuid4().hex, f"event {index}")
    async with session.post(f"{relay.url}/api/{PROJECT}/envelope/", data=body, headers=auth_header()) as resp:
        await resp.read()
        return resp.status


async def metric(session: aiohttp.ClientSession, relay: RelayProcess, name: str, labels: str = "") -> float:
    """One sample of a relay's /metrics (0 when absent)."""
    async with session.get(f"{relay.url}/metrics") as resp:
        text = await resp.text()
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*{re.escape(labels)}[^}}]*\}})? (\S+)$", re.M)
    return sum(float(m.group(1)) for m in pattern.finditer(text))


async def test_three_replicas_share_one_quota(start_relay: Any, upstream: FakeUpstream, shared_redis: Any) -> None:
    """3 processes, one quota of N errors: of 3N sent concurrently from several clients, N (±2%) are accepted."""
    limit = 300
    prefix = f"relay-test-{uuid.uuid4().hex[:12]}"
    wait_out_window_edge()
    relays = []
    for _ in range(3):
        port = free_port()
        relays.append(await start_relay(replica_config(port, upstream.url, SHARED_REDIS, prefix, limit), port))
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession() as session:
        for relay in relays:
            await relay.wait_ready(session)

        async def client(worker: int) -> None:
            async with aiohttp.ClientSession() as own:  # each client has its own connections
                for n in range(worker, 3 * limit, 9):
                    statuses[await send(own, relays[n % 3], n)] += 1

        started = time.monotonic()
        await asyncio.gather(*(client(w) for w in range(9)))
        took = time.monotonic() - started
        accepted = statuses[200]
        assert set(statuses) <= {200, 429}, statuses
        assert abs(accepted - limit) <= 0.02 * limit, f"accepted {accepted} of {3 * limit}, quota {limit}"
        await upstream.wait_for(accepted, timeout=30)
        errors = [await metric(session, r, "relay_ratelimit_backend_errors_total") for r in relays]
        per_replica = [await metric(session, r, "relay_quota_units_total", 'result="accepted"') for r in relays]
    assert sum(errors) == 0, "Redis answered every call: no fallback expected"
    assert sum(per_replica) == accepted and all(n > 0 for n in per_replica), per_replica
    print(f"3 replicas, quota {limit}: accepted {accepted} of {3 * limit} in {took:.2f}s; per replica {per_replica}")
    for key in shared_redis.scan_iter(f"{prefix}:*"):
        shared_redis.delete(key)


async def test_redis_killed_mid_run_falls_back_and_recovers(start_relay: Any, upstream: FakeUpstream) -> None:
    """Redis dies under load: no 500, nothing lost, the fallback is logged and counted; Redis back, it is used again."""
    redis_port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    with private_redis(redis_port) as server:
        url = f"redis://127.0.0.1:{redis_port}/0"
        relays = []
        for _ in range(2):
            port = free_port()
            relays.append(await start_relay(replica_config(port, upstream.url, url, "fallback", 1_000_000), port))
        statuses: Counter[int] = Counter()
        async with aiohttp.ClientSession() as session:
            for relay in relays:
                await relay.wait_ready(session)
            for n in range(40):
                statuses[await send(session, relays[n % 2], n)] += 1
            server.send_signal(signal.SIGKILL)
            server.wait()
            started = time.monotonic()
            for n in range(40, 120):
                statuses[await send(session, relays[n % 2], n)] += 1
            during = (time.monotonic() - started) / 80
            assert statuses == Counter({200: 120}), statuses
            await upstream.wait_for(120, timeout=30)
            for relay in relays:
                assert await metric(session, relay, "relay_ratelimit_backend_up") == 0
                assert await metric(session, relay, "relay_ratelimit_backend_errors_total") >= 1
                warning = [r for r in relay.logs if r.get("level") == "warning" and "redis" in str(r).lower()]
                assert len(warning) == 1, relay.raw  # one line per outage, not one per envelope
            restarted = start_redis(binary, redis_port)
            try:
                await asyncio.sleep(1.5)  # past `reconnect`
                for n in range(120, 140):
                    assert await send(session, relays[n % 2], n) == 200
                for relay in relays:
                    assert await metric(session, relay, "relay_ratelimit_backend_up") == 1
                used = redis.Redis(port=redis_port).keys("fallback:*")
                assert used, "after reconnecting, the quota is counted in Redis again"
            finally:
                restarted.kill()
                restarted.wait()
    print(f"redis killed: 80 envelopes answered 200 at {during * 1000:.1f} ms each, all delivered")
