"""Quotas on a Sentinel-managed Redis (a master, two replicas, three sentinels) that these tests start: three
relay replicas share a quota through `redis+sentinel://`, and keep answering while the master fails over.

While a replica can't reach a master it decides with its local limiter, which enforces the full limit on its
own: the envelopes answered in that time are the extras. Before and after, Redis decides, exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from relay.ratelimit.quota import QuotaCheck
from relay.ratelimit.redis import RedisQuotaBackend

from ..conftest import RelayFactory
from ..support import FakeUpstream
from .redis_servers import SERVICE, SentinelServers, wait_until
from .relay_replicas import (
    backend_errors,
    backend_up,
    quota_projects,
    ratelimit_yaml,
    roomy_window,
    send_events,
    start_replicas,
)

N = 300  # each phase's shared quota
RATE = 150.0  # envelopes per second during a failover, across the three replicas


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelServers]:
    """A fresh Sentinel setup for this module; stopped and its directory deleted afterwards."""
    servers = SentinelServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


@dataclass
class Failover:
    """What one failover under load cost."""

    sent: int
    accepted: int
    extras: int  # accepted beyond the quota
    answered_while_down: int  # envelopes answered while their replica's backend was down (decided locally)
    promoted_after: float  # seconds from the trigger until the sentinels named the new master
    recovered_after: float  # seconds from the trigger until every replica decided with Redis again


async def failover_under_load(
    sentinel: SentinelServers, replicas: list[Any], trigger: Callable[[], None], *, trigger_after: float = 1.0
) -> Failover:
    """Send 3N envelopes at `RATE`; `trigger` the failover `trigger_after` seconds in; measure."""
    old_master = sentinel.current_master()
    down_since: list[float | None] = [None] * len(replicas)
    down_spans: list[list[tuple[float, float]]] = [[] for _ in replicas]
    watching = True

    async def watch() -> None:  # when each replica decides locally (relay_ratelimit_backend_up == 0)
        while watching:
            now = time.monotonic()
            for index, client in enumerate(replicas):
                up = backend_up(client)
                if not up and down_since[index] is None:
                    down_since[index] = now
                elif up and down_since[index] is not None:
                    down_spans[index].append((down_since[index], now))  # type: ignore[arg-type]
                    down_since[index] = None
            await asyncio.sleep(0.005)

    async def fail_over() -> tuple[float, float]:
        await asyncio.sleep(trigger_after)
        started = time.monotonic()
        await asyncio.to_thread(trigger)
        await asyncio.to_thread(
            wait_until, lambda: sentinel.current_master() != old_master, 30, "the sentinels to promote a replica"
        )
        return started, time.monotonic() - started

    watcher = asyncio.ensure_future(watch())
    load = asyncio.ensure_future(send_events(replicas, 3 * N, rate=RATE))
    triggered_at, promoted_after = await fail_over()
    tally = await load
    deadline = time.monotonic() + 30
    while not all(backend_up(client) for client in replicas) or any(since is not None for since in down_since):
        assert time.monotonic() < deadline, "the replicas did not return to Redis"
        await asyncio.sleep(0.01)
    watching = False
    await watcher
    assert not tally.other
    ends = [end for spans in down_spans for _, end in spans if end >= triggered_at]
    recovered_after = max(ends) - triggered_at if ends else 0.0
    answered_while_down = sum(
        1 for at, replica, _ in tally.sent_at if any(start <= at <= end for start, end in down_spans[replica])
    )
    return Failover(3 * N, tally.accepted, tally.accepted - N, answered_while_down, promoted_after, recovered_after)


async def test_three_replicas_share_one_quota_through_sentinel(
    sentinel: SentinelServers, make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """Three relays find the master through the sentinels; 3N envelopes against a quota of N: N accepted."""
    ratelimit = ratelimit_yaml(sentinel.url)
    replicas = await start_replicas(make_relay, ratelimit, quota_projects(upstream, [("shared", N, roomy_window())]))
    tally = await send_events(replicas, 3 * N)
    print(f"\nsentinel: {tally.accepted} of {3 * N} accepted, quota {N}")
    assert not tally.other
    assert abs(tally.accepted - N) <= 0.02 * N
    assert tally.accepted == N
    assert backend_errors(replicas) == 0


async def test_a_backend_follows_the_master_across_a_failover(sentinel: SentinelServers) -> None:
    """After a failover the counts are on the new master: the backend goes on where it left off."""
    backend = RedisQuotaBackend(sentinel.url, "follow", 2.0)
    await backend.start()
    quota = QuotaCheck("1:q:project:1", 5, 86400, None, 1)
    try:
        assert await backend.consume([[quota]] * 3) == [0.0] * 3
        master = sentinel.current_master()
        client = sentinel.client(master)
        client.execute_command("WAIT", 1, 1000)  # a replica has the counts
        client.close()
        trigger = sentinel.client(sentinel.sentinels[1])
        trigger.execute_command("SENTINEL", "FAILOVER", SERVICE)
        trigger.close()
        wait_until(lambda: sentinel.current_master() != master, 30, "the sentinels to promote a replica")
        results: list[float] = []
        deadline = time.monotonic() + 15
        while len(results) < 3:
            try:
                results += await backend.consume([[quota]])
            except ConnectionError:  # the old master, now a replica, refused a write: ask the sentinels again
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    finally:
        await backend.close()
    assert results[:2] == [0.0, 0.0] and results[2] > 0  # 3 before, 2 after: 5 of 5


def report(kind: str, failover: Failover, after: int) -> None:
    """Print the measurements (pytest -s shows them)."""
    print(
        f"\n{kind}: quota {N}, {failover.sent} sent at {RATE:g}/s: {failover.accepted} accepted "
        f"({failover.extras} extra; {failover.answered_while_down} answered while a replica was on its local "
        f"limiter); new master after {failover.promoted_after:.2f}s, all replicas on Redis again after "
        f"{failover.recovered_after:.2f}s; after: {after} of {3 * N} accepted"
    )


async def check_failover(
    sentinel: SentinelServers, make_relay: RelayFactory, upstream: FakeUpstream, trigger: Callable[[], None], kind: str
) -> Failover:
    """Before (exact), during (measured, bounded) and after (exact) a failover."""
    window = roomy_window()
    quotas = [("before", N, window), ("during", N, window), ("after", N, window)]
    ratelimit = ratelimit_yaml(sentinel.url, timeout="1s", reconnect="1s")
    # One quota per phase: each phase's envelopes are counted against its own quota (ids select them below).
    phases = {}
    for phase, _, _ in quotas:
        only = [quota for quota in quotas if quota[0] == phase]
        phases[phase] = await start_replicas(make_relay, ratelimit, quota_projects(upstream, only))
    before = await send_events(phases["before"], 3 * N)
    assert before.accepted == N
    failover = await failover_under_load(sentinel, phases["during"], trigger)
    after = await send_events(phases["after"], 3 * N)
    report(kind, failover, after.accepted)
    assert abs(after.accepted - N) <= 0.02 * N
    assert failover.accepted >= N  # the quota is never under-enforced
    # Every extra was decided by a local limiter while its replica couldn't reach a master (give or take the
    # writes the old master took but had not yet replicated when it died).
    assert failover.extras <= failover.answered_while_down + 0.02 * N
    assert failover.extras <= 3 * N  # each replica's local limiter enforces the full limit
    return failover


async def test_failover_by_sentinel_command_under_load(
    sentinel: SentinelServers, make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """SENTINEL FAILOVER during load: the sentinels close the old master's clients, the relays reconnect to the new
    master through them."""

    def trigger() -> None:
        client = sentinel.client(sentinel.sentinels[0])
        client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        client.close()

    await check_failover(sentinel, make_relay, upstream, trigger, "SENTINEL FAILOVER")


async def test_failover_after_the_master_is_killed_under_load(
    sentinel: SentinelServers, make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """The master is SIGKILLed during load: local limiters answer until the sentinels promote a replica."""
    wait_until(lambda: _replicas_in_sync(sentinel), 30, "a replica in sync after the last failover")
    await check_failover(sentinel, make_relay, upstream, lambda: sentinel.kill(sentinel.current_master()), "SIGKILL")


def _replicas_in_sync(sentinel: SentinelServers) -> bool:
    """Whether a replica is online with the current master, ready to be promoted."""
    client = sentinel.client(sentinel.current_master())
    try:
        info = client.info("replication")
    finally:
        client.close()
    replicas = [info[f"slave{i}"] for i in range(int(info["connected_slaves"]))]
    return any(replica["state"] == "online" for replica in replicas)
