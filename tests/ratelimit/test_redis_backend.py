"""The Redis quota backend against real Redis servers, and the fallback to the local limiter.

The shared server is `RELAY_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0); if it is unreachable these
tests fail rather than skip. Each test keeps to its own key prefix and deletes its keys afterwards. Outages
are played on private `redis-server` processes started on free ports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
import redis

from relay.clock import SystemClock
from relay.config.model import RateLimitConfig
from relay.metrics import Metrics
from relay.ratelimit.memory import MemoryQuotaBackend
from relay.ratelimit.quota import QuotaCheck
from relay.ratelimit.redis import FallbackQuotaBackend, RedisQuotaBackend, build_quota_backend

from ..support import FakeClock, free_port

REDIS_URL = os.environ.get("RELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HUGE_WINDOW = 1_000_000_000  # the slot boundary is in 2033: counts can't reset in the middle of a test
WARNING = "quota backend unavailable, deciding locally"
BACK = "quota backend back"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis server; fails (never skips) when it can't be reached."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required by these tests and is unreachable: {exc}", pytrace=False)
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"relay-test:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def backend(redis_url: str, prefix: str) -> AsyncIterator[RedisQuotaBackend]:
    """A started Redis backend on the shared server, with a generous timeout."""
    quota_backend = RedisQuotaBackend(redis_url, prefix, timeout=2.0)
    await quota_backend.start()
    yield quota_backend
    await quota_backend.close()


class RedisServer:
    """A private redis-server process that tests may kill, pause and restart."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required by the outage tests and is not on PATH", pytrace=False)
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([*args, "--daemonize", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {self.port}", pytrace=False)
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)  # a paused process dies just the same, but then reaps promptly
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def keys(self, pattern: str) -> list[bytes]:
        """The keys matching a pattern on this server."""
        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            return list(client.scan_iter(match=pattern))
        finally:
            client.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A started private redis-server, killed after the test."""
    server = RedisServer()
    server.start()
    yield server
    if server.proc is not None:
        server.kill()


def check(key: str, limit: int, quantity: int = 1, window: int = HUGE_WINDOW, burst: int | None = None) -> QuotaCheck:
    """A quota check with defaults for tests."""
    return QuotaCheck(key, limit, window, burst, quantity)


def redis_seconds_left(url: str, window: int) -> float:
    """Seconds left in the current slot of `window`, by the server's clock."""
    client = redis.Redis.from_url(url)
    seconds, micros = client.time()
    client.close()
    now = seconds + micros / 1_000_000
    return (now // window + 1) * window - now


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A metric's current value (0 if it was never touched)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- Same decisions as the memory backend ---------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_same_decisions_as_memory_backend(backend: RedisQuotaBackend, seed: int) -> None:
    """A random sequence of windowed and burst checks is decided exactly as MemoryQuotaBackend decides it."""
    rng = random.Random(seed)
    memory = MemoryQuotaBackend(FakeClock())
    quotas = [
        ("a", 5, 10, None),
        ("b", 3, 60, None),
        ("c", 10, 60, 4),
        ("d", 2, 1, 2),
        ("e", 0, 30, None),
        ("f", 100, 3600, 7),
        ("g", 0, 5, 3),
    ]
    now = 1_700_000_000.123
    compared = refused = 0
    for _ in range(400):
        now += rng.choice([0.0, 0.001, 0.37, 1.5, 4.0, rng.uniform(0, 20)])
        groups = [
            [check(key, limit, rng.randint(0, 5), window, burst) for key, limit, window, burst in picked]
            for picked in (rng.sample(quotas, rng.randint(1, 3)) for _ in range(rng.randint(1, 3)))
        ]
        expected = memory.consume_now(groups, now)
        got = await backend.consume_at(groups, now)
        assert got == pytest.approx(expected, abs=1e-9), (now, groups)
        compared += len(groups)
        refused += sum(1 for wait in expected if wait > 0)
    assert 0 < refused < compared  # the sequence exercised both answers


async def test_window_limit_and_retry_after_at_a_known_time(backend: RedisQuotaBackend) -> None:
    """At a given time: `limit` units per slot, then a refusal that waits exactly until the slot ends."""
    now = 1_700_000_010.25  # 29.75 s before the end of its 60 s slot
    quota = check("w", 3, window=60)
    assert await backend.consume_at([[quota], [quota], [quota]], now) == [0.0, 0.0, 0.0]
    assert await backend.consume_at([[quota]], now) == [pytest.approx(29.75)]
    assert await backend.consume_at([[quota]], now + 29.75) == [0.0]  # the next slot starts empty


async def test_keys_follow_the_documented_layout(backend: RedisQuotaBackend, redis_url: str, prefix: str) -> None:
    """Counters live at <prefix>:q:<key>:<window>:<slot>, burst state at <prefix>:b:<key>:<window>, with expiries."""
    now = 1_700_000_010.25
    await backend.consume_at([[check("k", 5, quantity=2, window=60, burst=4)]], now)
    client = redis.Redis.from_url(redis_url)
    counter = f"{prefix}:q:k:60:{int(now // 60)}"
    assert client.get(counter) == b"2"
    assert 0 < client.pttl(counter) <= (29.75 + 1) * 1000
    tat = client.get(f"{prefix}:b:k:60")
    assert tat is not None and float(tat) == pytest.approx(now + 2 * 60 / 5)
    assert client.pttl(f"{prefix}:b:k:60") > 0
    client.close()


# -- Atomicity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "burst", "expected"), [(50, None, 50), (1_000_000, 20, 20)])
async def test_concurrent_calls_from_several_replicas_accept_exactly_the_quota(
    redis_url: str, prefix: str, limit: int, burst: int | None, expected: int
) -> None:
    """Hundreds of concurrent calls from four backends (separate pools) on one quota: exactly its size is accepted."""
    backends = [RedisQuotaBackend(redis_url, prefix, timeout=5.0) for _ in range(4)]
    for quota_backend in backends:
        await quota_backend.start()
    quota = check("shared", limit, burst=burst)
    calls = [backends[i % 4].consume([[quota]]) for i in range(400)]
    results = await asyncio.gather(*calls)
    for quota_backend in backends:
        await quota_backend.close()
    assert sum(1 for [wait] in results if wait == 0.0) == expected
    assert all(wait > 0 for [wait] in results if wait != 0.0) and len(results) == 400


# -- Groups ----------------------------------------------------------------------------------------


async def test_refused_group_consumes_nothing(backend: RedisQuotaBackend) -> None:
    """A group refused by one of its checks leaves the other checks' counters untouched."""
    a, b = check("a", 5, quantity=2), check("b", 3, quantity=2)
    assert await backend.consume([[a, b]]) == [0.0]  # a: 2, b: 2
    [wait] = await backend.consume([[a, b]])  # b would reach 4 of 3
    assert wait > 0
    assert await backend.consume([[check("a", 5, quantity=3)]]) == [0.0]  # a still had 3 left
    assert (await backend.consume([[check("a", 5, quantity=1)]]))[0] > 0


async def test_accepted_group_consumes_every_check(backend: RedisQuotaBackend) -> None:
    """An accepted group draws its quantity from each of its checks."""
    assert await backend.consume([[check("a", 4, quantity=3), check("b", 4, quantity=3)]]) == [0.0]
    results = await backend.consume([[check("a", 4, quantity=2)], [check("b", 4, quantity=2)]])
    assert all(wait > 0 for wait in results)


async def test_groups_are_decided_in_order(backend: RedisQuotaBackend) -> None:
    """Earlier groups draw first, and later groups in the same call see what they used."""
    first = await backend.consume([[check("x", 3, quantity=3)], [check("x", 3, quantity=1), check("y", 9)]])
    assert first[0] == 0.0 and first[1] > 0
    second = await backend.consume([[check("z", 3, quantity=1)], [check("z", 3, quantity=3)]])
    assert second[0] == 0.0 and second[1] > 0
    assert await backend.consume([[check("y", 9, quantity=9)]]) == [0.0]  # the refused group left y alone


# -- retry_after -----------------------------------------------------------------------------------


async def test_window_retry_after_is_positive_and_within_the_window(backend: RedisQuotaBackend, redis_url: str) -> None:
    """A refusal by Redis's clock waits for the rest of the slot: more than 0, at most the window."""
    if redis_seconds_left(redis_url, 60) < 2:
        await asyncio.sleep(2.1)  # don't straddle a slot boundary
    quota = check("r", 2, window=60)
    assert await backend.consume([[quota], [quota]]) == [0.0, 0.0]
    [wait] = await backend.consume([[quota]])
    assert 0 < wait <= 60
    assert wait == pytest.approx(redis_seconds_left(redis_url, 60), abs=0.5)


async def test_burst_retry_after_is_about_quantity_times_window_over_limit(backend: RedisQuotaBackend) -> None:
    """With the bucket empty, asking for 2 units waits 2 * window / limit seconds."""
    assert await backend.consume([[check("bu", 10, quantity=5, window=60, burst=5)]]) == [0.0]
    [wait] = await backend.consume([[check("bu", 10, quantity=2, window=60, burst=5)]])
    assert wait == pytest.approx(2 * 60 / 10, abs=0.5)
    [too_big] = await backend.consume([[check("bu", 10, quantity=6, window=60, burst=5)]])
    assert too_big == 60  # more than the bucket holds: it never fits, wait a window


# -- Fallback to the local limiter -------------------------------------------------------------------


def fallback_to(
    url: str, prefix: str, clock: FakeClock, metrics: Metrics, timeout: float = 0.2, socket_timeout: float | None = None
) -> FallbackQuotaBackend:
    """A fallback backend over Redis at `url`, reconnecting after 5 s of `clock`."""
    primary = RedisQuotaBackend(url, prefix, timeout=timeout if socket_timeout is None else socket_timeout)
    local = MemoryQuotaBackend(clock)
    return FallbackQuotaBackend(primary, local, timeout=timeout, reconnect=5.0, metrics=metrics, clock=clock)


def messages(caplog: pytest.LogCaptureFixture, text: str) -> int:
    """How many captured records carry this message."""
    return sum(1 for record in caplog.records if record.getMessage() == text)


async def test_fallback_survives_a_killed_redis_and_returns_to_it(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed: the local limiter answers within the timeout; Redis back: used again after the interval."""
    caplog.set_level(logging.INFO, logger="relay.ratelimit")
    clock, metrics = FakeClock(), Metrics()
    quotas = fallback_to(private_redis.url, "fb", clock, metrics)
    await quotas.start()
    assert quotas.name == "redis"
    assert await quotas.consume([[check("k", 10)]]) == [0.0]
    assert private_redis.keys("fb:q:k:*")
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 1

    private_redis.kill()
    started = time.perf_counter()
    assert await quotas.consume([[check("k", 10)]]) == [0.0]
    assert time.perf_counter() - started < 1
    assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="connection") == 1
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 0

    private_redis.start()  # same port, empty
    clock.advance(4.0)
    assert await quotas.consume([[check("k", 10)]]) == [0.0]  # still local: not due to try Redis again
    assert not private_redis.keys("fb:*")
    assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="connection") == 1

    clock.advance(1.5)
    assert await quotas.consume([[check("k", 10)]]) == [0.0]
    assert private_redis.keys("fb:q:k:*")
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 1
    assert messages(caplog, WARNING) == 1 and messages(caplog, BACK) == 1
    await quotas.close()
    await quotas.close()


@pytest.mark.parametrize("socket_timeout", [0.1, 5.0], ids=["socket-timeout", "cancelled-by-wait-for"])
async def test_fallback_answers_within_the_timeout_when_redis_hangs(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture, socket_timeout: float
) -> None:
    """A paused Redis (SIGSTOP) costs one call about `timeout`, then the local limiter answers."""
    caplog.set_level(logging.INFO, logger="relay.ratelimit")
    clock, metrics = FakeClock(), Metrics()
    quotas = fallback_to(private_redis.url, "slow", clock, metrics, timeout=0.1, socket_timeout=socket_timeout)
    await quotas.start()
    assert await quotas.consume([[check("k", 1)]]) == [0.0]  # Redis: the only unit

    private_redis.pause()
    try:
        started = time.perf_counter()
        assert await quotas.consume([[check("k", 1)]]) == [0.0]  # the local limiter has its own unit
        elapsed = time.perf_counter() - started
        assert 0.05 < elapsed < 1
        assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="timeout") == 1
        assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 0
        assert (await quotas.consume([[check("k", 1)]]))[0] > 0  # while down: local, without trying Redis
        assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="timeout") == 1
    finally:
        private_redis.resume()

    clock.advance(5.0)
    assert (await quotas.consume([[check("k", 1)]]))[0] > 0  # Redis again, which counted the first unit
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 1
    assert messages(caplog, WARNING) == 1 and messages(caplog, BACK) == 1
    await quotas.close()


async def test_start_with_redis_unreachable_does_not_raise() -> None:
    """The relay starts without Redis; the raw backend raises ConnectionError, the fallback answers locally."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    raw = RedisQuotaBackend(url, "down", timeout=0.2)
    await raw.start()
    with pytest.raises(ConnectionError):
        await raw.consume([[check("k", 1)]])
    await raw.close()
    await raw.close()

    metrics = Metrics()
    config = RateLimitConfig(backend="redis", url=url, timeout=0.2, key_prefix="down")
    quotas = build_quota_backend(config, metrics, SystemClock())
    assert isinstance(quotas, FallbackQuotaBackend)
    await quotas.start()
    first, second = await quotas.consume([[check("k", 1)], [check("k", 1)]])
    assert first == 0.0 and second > 0
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 0
    await quotas.close()


async def test_one_round_trip_per_call_and_reload_after_script_flush(private_redis: RedisServer) -> None:
    """Each call is one EVALSHA; a server without the script gets it by EVAL, once."""
    quotas = RedisQuotaBackend(private_redis.url, "rt", timeout=2.0)
    await quotas.start()
    admin = redis.Redis(port=private_redis.port)
    assert await quotas.consume([[check("k", 10)]]) == [0.0]  # a new server: NOSCRIPT, then EVAL
    admin.script_flush()
    admin.config_resetstat()
    for _ in range(5):
        assert await quotas.consume([[check("k", 10)], [check("j", 10, burst=5)]]) == [0.0, 0.0]
    stats = admin.info("commandstats")
    admin.close()
    await quotas.close()
    assert stats["cmdstat_eval"]["calls"] == 1
    assert stats["cmdstat_evalsha"]["calls"] in (5, 6)  # Redis < 7 also counts the one refused with NOSCRIPT
    inside_scripts = {"time", "get", "set", "incrby", "pexpire"}
    ours = {"evalsha", "eval", "info", "config|resetstat"}
    assert {name.removeprefix("cmdstat_") for name in stats} <= inside_scripts | ours  # nothing but the script


# -- Fallback logic, with a scripted primary --------------------------------------------------------


class ScriptedPrimary:
    """A primary backend that fails, hangs or answers as told, and counts its calls."""

    name = "redis"

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.hang = False
        self.calls = 0

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to close."""

    async def consume(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        """Fail, hang or accept everything."""
        self.calls += 1
        await asyncio.sleep(0)
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        return [0.0] * len(groups)


def scripted(clock: FakeClock, metrics: Metrics, timeout: float = 0.05) -> tuple[ScriptedPrimary, FallbackQuotaBackend]:
    """A fallback backend over a scripted primary."""
    primary = ScriptedPrimary()
    quotas = FallbackQuotaBackend(
        primary, MemoryQuotaBackend(clock), timeout=timeout, reconnect=5.0, metrics=metrics, clock=clock
    )
    return primary, quotas


@pytest.mark.parametrize(
    ("error", "kind"),
    [(ConnectionError("refused"), "connection"), (TimeoutError(), "timeout"), (ValueError("bad reply"), "error")],
)
async def test_fallback_counts_errors_by_kind(error: Exception, kind: str) -> None:
    """Connection errors, timeouts and anything else are counted under their own label."""
    clock, metrics = FakeClock(), Metrics()
    primary, quotas = scripted(clock, metrics)
    primary.error = error
    assert await quotas.consume([[check("k", 1)]]) == [0.0]
    assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error=kind) == 1


async def test_concurrent_failures_log_one_warning_and_later_calls_stay_local(caplog: pytest.LogCaptureFixture) -> None:
    """Ten calls failing at once: ten errors counted, one warning; then no call reaches the primary until due."""
    caplog.set_level(logging.INFO, logger="relay.ratelimit")
    clock, metrics = FakeClock(), Metrics()
    primary, quotas = scripted(clock, metrics)
    primary.error = ConnectionError("refused")
    results = await asyncio.gather(*(quotas.consume([[check("k", 100)]]) for _ in range(10)))
    assert results == [[0.0]] * 10
    assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="connection") == 10
    assert messages(caplog, WARNING) == 1
    warning = next(r for r in caplog.records if r.getMessage() == WARNING)
    assert warning.levelno == logging.WARNING and "refused" in warning.__dict__["detail"]

    await asyncio.gather(*(quotas.consume([[check("k", 100)]]) for _ in range(10)))
    assert primary.calls == 10

    clock.advance(5.0)
    primary.error = None
    primary.hang = True  # the probe is slow: the calls alongside it don't wait for it
    probe = asyncio.ensure_future(quotas.consume([[check("k", 100)]]))
    await asyncio.sleep(0)
    others = await asyncio.gather(*(quotas.consume([[check("k", 100)]]) for _ in range(5)))
    assert others == [[0.0]] * 5 and primary.calls == 11
    assert await probe == [0.0]  # timed out: answered locally
    assert messages(caplog, WARNING) == 1  # still the same outage

    clock.advance(5.0)
    primary.hang = False
    assert await quotas.consume([[check("k", 100)]]) == [0.0]
    assert primary.calls == 12
    assert messages(caplog, BACK) == 1
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 1


async def test_cancellation_propagates() -> None:
    """A cancelled consume raises CancelledError and is not counted as a backend failure."""
    clock, metrics = FakeClock(), Metrics()
    primary, quotas = scripted(clock, metrics, timeout=10.0)
    primary.hang = True
    task = asyncio.ensure_future(quotas.consume([[check("k", 1)]]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sample(metrics, "relay_ratelimit_backend_up", backend="redis") == 1
    assert sample(metrics, "relay_ratelimit_backend_errors_total", backend="redis", error="timeout") == 0


# -- The factory -----------------------------------------------------------------------------------


def test_memory_backend_never_imports_redis() -> None:
    """`backend: memory` builds the memory backend without loading the redis package."""
    code = (
        "import sys\n"
        "from relay.clock import SystemClock\n"
        "from relay.config.model import RateLimitConfig\n"
        "from relay.metrics import Metrics\n"
        "from relay.ratelimit.redis import build_quota_backend\n"
        "backend = build_quota_backend(RateLimitConfig(), Metrics(), SystemClock())\n"
        "assert backend.name == 'memory', backend\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_a_spike_of_concurrent_calls_is_coalesced_and_stays_on_redis(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 envelopes at once cost one script call (not 1,000 round trips) and accept exactly the quota."""
    clock, metrics = FakeClock(), Metrics()
    primary = RedisQuotaBackend(redis_url, prefix, timeout=2.0)
    calls: list[int] = []
    run = primary._run

    async def counted(groups: Any, now: str) -> list[float]:
        calls.append(len(groups))
        return await run(groups, now)

    monkeypatch.setattr(primary, "_run", counted)
    # A generous budget: what this checks is the coalescing, not how fast a busy CI machine is.
    quotas = FallbackQuotaBackend(
        primary, MemoryQuotaBackend(clock), timeout=2.0, reconnect=5.0, metrics=metrics, clock=clock
    )
    await quotas.start()
    try:
        results = await asyncio.gather(*(quotas.consume([[check("spike", 300)]]) for _ in range(1000)))
    finally:
        await quotas.close()
    assert calls == [1000], calls
    assert sum(1 for r in results if r == [0.0]) == 300
    assert sample(metrics, "relay_ratelimit_backend_errors_total") == 0
