"""Quotas on a real Redis Cluster (3 masters, 3 replicas), started by these tests: shared by three relay
replicas, one script call per hash slot, and `MOVED`/`ASK` followed while a slot migrates."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from relay.clock import SystemClock
from relay.metrics import Metrics
from relay.ratelimit.fallback import FallbackQuotaBackend
from relay.ratelimit.memory import MemoryQuotaBackend
from relay.ratelimit.quota import QuotaCheck
from relay.ratelimit.redis import RedisQuotaBackend

from ..conftest import RelayFactory
from ..support import PROJECT, FakeUpstream
from .redis_servers import ClusterServers
from .relay_replicas import backend_errors, quota_projects, ratelimit_yaml, roomy_window, send_events, start_replicas

N = 300  # the shared quota


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServers]:
    """A fresh 6-node cluster for this module; stopped and its directory deleted afterwards."""
    servers = ClusterServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


def prefix() -> str:
    """A key prefix no other test uses."""
    return f"c{uuid.uuid4().hex[:10]}"


def check(project: int, limit: int, quantity: int = 1, window: int = 86400) -> QuotaCheck:
    """A project-wide check, keyed as the quota stage keys it."""
    return QuotaCheck(f"{project}:q:project:{project}", limit, window, None, quantity)


def stat(cluster: ClusterServers, port: int, section: str, name: str) -> int:
    """A counter from INFO on one node (0 if absent): `errorstats` `errorstat_MOVED`, `commandstats` ..."""
    client = cluster.client(port)
    try:
        value = client.info(section).get(name, {})
    finally:
        client.close()
    return int(value.get("count", value.get("calls", 0))) if isinstance(value, dict) else 0


async def test_three_replicas_share_one_quota_on_the_cluster(
    cluster: ClusterServers, make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """Three relays, one quota of N on the cluster, 3N envelopes: N are accepted (within 2%), no fallback."""
    window = roomy_window()
    ratelimit = ratelimit_yaml(cluster.url, cluster=True)
    replicas = await start_replicas(make_relay, ratelimit, quota_projects(upstream, [("shared", N, window)]))
    tally = await send_events(replicas, 3 * N)
    print(f"\ncluster: {tally.accepted} of {3 * N} accepted, quota {N}, refused {tally.refused}")
    assert not tally.other
    assert abs(tally.accepted - N) <= 0.02 * N
    assert tally.accepted == N  # every decision was Redis's: exact
    assert backend_errors(replicas) == 0


async def test_keys_carry_the_project_as_hash_tag(cluster: ClusterServers) -> None:
    """Every key of a project's quota is in the slot of `{<project>}`, on the master that serves it."""
    key_prefix = prefix()
    backend = RedisQuotaBackend(cluster.url, key_prefix, 2.0, cluster=True)
    await backend.start()
    try:
        burst = QuotaCheck(f"{PROJECT}:b:key:abc", 10, 60, 5, 1)
        assert await backend.consume([[check(PROJECT, 5), burst]]) == [0.0]
    finally:
        await backend.close()
    slot = key_slot(f"{{{PROJECT}}}".encode())
    _, port = cluster.owner(slot)
    client = cluster.client(port)
    keys = sorted(key.decode() for key in client.scan_iter(match=f"{key_prefix}:*"))
    client.close()
    assert len(keys) == 3
    assert keys[0].startswith(f"{key_prefix}:b:{{{PROJECT}}}:b:key:abc:60")
    assert all(key_slot(key.encode()) == slot for key in keys)


async def test_coalesced_calls_are_split_by_slot_and_each_limit_holds(cluster: ClusterServers) -> None:
    """600 concurrent envelopes of 30 projects: one script call per hash slot, each project's limit exact."""
    projects = list(range(1000, 1030))
    slots = {key_slot(f"{{{project}}}".encode()) for project in projects}
    masters = {port for _, (port, _) in cluster.masters().items()}
    backend = RedisQuotaBackend(cluster.url, prefix(), 2.0, cluster=True)
    await backend.start()
    try:
        # A first round that consumes nothing: the slot map is known and every master has the script cached.
        await asyncio.gather(*(backend.consume([[check(project, 7, 0)]]) for project in projects))
        before = {port: stat(cluster, port, "commandstats", "cmdstat_evalsha") for port in masters}
        calls = [backend.consume([[check(project, 7)]]) for project in projects for _ in range(20)]
        results = await asyncio.gather(*calls)
        after = {port: stat(cluster, port, "commandstats", "cmdstat_evalsha") for port in masters}
    finally:
        await backend.close()
    accepted = [0] * len(projects)
    for index, [wait] in enumerate(results):
        accepted[index // 20] += wait == 0.0
    assert accepted == [7] * len(projects)
    assert len({port for port in masters if after[port] > before[port]}) == 3  # all three masters did work
    assert sum(after.values()) - sum(before.values()) == len(slots)  # one call per slot (EVALSHA, cached or not)


def migrate(cluster: ClusterServers, slot: int, *, finish: bool = True) -> tuple[int, int]:
    """Move a slot and its keys to another master (CLUSTER SETSLOT and MIGRATE); with `finish=False` the slot
    stays MIGRATING/IMPORTING, its keys already moved, so the old owner answers ASK. Returns (source, target)."""
    source_id, source = cluster.owner(slot)
    target_id, target = next((i, p) for i, (p, r) in cluster.masters().items() if i != source_id and r)
    src, dst = cluster.client(source), cluster.client(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    if keys:
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    if finish:
        for port in {p for p, _ in cluster.masters().values()}:
            node = cluster.client(port)
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            node.close()
    src.close()
    dst.close()
    return source, target


def finish_migration(cluster: ClusterServers, slot: int, target: int) -> None:
    """Give the slot to `target` on every master."""
    target_id = next(node_id for node_id, (port, _) in cluster.masters().items() if port == target)
    for port in {p for p, _ in cluster.masters().values()}:
        node = cluster.client(port)
        node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        node.close()


async def test_a_migrated_slot_is_followed_through_moved(cluster: ClusterServers) -> None:
    """A slot moves to another master under a client with the old map: MOVED is followed, the counts move along."""
    project = 777
    slot = key_slot(f"{{{project}}}".encode())
    backend = RedisQuotaBackend(cluster.url, prefix(), 2.0, cluster=True)
    await backend.start()
    try:
        first = await asyncio.gather(*(backend.consume([[check(project, 10)]]) for _ in range(6)))
        source, target = migrate(cluster, slot)
        moved_before = stat(cluster, source, "errorstats", "errorstat_MOVED")
        second = await asyncio.gather(*(backend.consume([[check(project, 10)]]) for _ in range(3)))
        moved_after = stat(cluster, source, "errorstats", "errorstat_MOVED")
        third = await asyncio.gather(*(backend.consume([[check(project, 10)]]) for _ in range(6)))
    finally:
        await backend.close()
    accepted = [sum(wait == 0.0 for [wait] in batch) for batch in (first, second, third)]
    assert accepted == [6, 3, 1]  # 10 in all: the counter moved with its slot
    assert moved_after > moved_before  # the old owner said MOVED, and the client followed it
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    assert client.cluster_keyslot(f"{{{project}}}") == slot
    assert client.get_node_from_key(f"{{{project}}}").port == target
    client.close()


async def test_a_slot_being_migrated_is_followed_through_ask(cluster: ClusterServers) -> None:
    """While a slot is MIGRATING with its keys moved, the old owner answers ASK and the client asks the new one.

    A multi-key script runs on the importing node only if all its keys are there: a call that would create a key
    gets TRYAGAIN until the slot has moved (the fallback then decides locally). So this call reuses its keys: a
    burst check, at a fixed time (one window slot).
    """
    project = 4242
    slot = key_slot(f"{{{project}}}".encode())
    now = time.time()
    burst = QuotaCheck(f"{project}:q:project:{project}", 4, 86400, 4, 2)
    backend = RedisQuotaBackend(cluster.url, prefix(), 2.0, cluster=True)
    await backend.start()
    try:
        assert await backend.consume_at([[burst]], now) == [0.0]  # creates both keys
        source, target = migrate(cluster, slot, finish=False)
        asked_before = stat(cluster, source, "errorstats", "errorstat_ASK")
        assert await backend.consume_at([[burst]], now) == [0.0]  # decided on the importing node
        asked_after = stat(cluster, source, "errorstats", "errorstat_ASK")
        fresh = QuotaCheck(f"{project}:other:project:{project}", 4, 86400, None, 1)
        with pytest.raises(redis.RedisError):  # TRYAGAIN: this check's counter exists on neither side yet
            await backend.consume([[fresh]])
        finish_migration(cluster, slot, target)
        [wait] = await backend.consume_at([[QuotaCheck(burst.key, 4, 86400, 4, 1)]], now)
        assert await backend.consume([[fresh]]) == [0.0]  # and a new key is fine again
    finally:
        await backend.close()
    assert asked_after > asked_before
    assert wait > 0  # 4 of 4 used: the counts were where the ASK pointed


async def test_a_master_killed_under_load_fails_over_to_its_replica(cluster: ClusterServers) -> None:
    """SIGKILL the master of a project's slot while three replicas draw from its quota: they decide locally until
    the cluster promotes that master's replica (cluster-node-timeout 2 s), then with Redis again. Runs last: the
    cluster is down a node afterwards."""
    project = 31337
    slot = key_slot(f"{{{project}}}".encode())
    _, port = cluster.owner(slot)
    clock = SystemClock()
    metrics = [Metrics() for _ in range(3)]
    key_prefix = prefix()
    replicas = [
        FallbackQuotaBackend(
            RedisQuotaBackend(cluster.url, key_prefix, 0.5, cluster=True),
            MemoryQuotaBackend(clock),
            timeout=0.5,
            reconnect=1.0,
            metrics=metric,
            clock=clock,
        )
        for metric in metrics
    ]
    for replica in replicas:
        await replica.start()
    rate, accepted, down_answers = 150.0, 0, 0
    started = time.monotonic()
    killed_at = recovered_at = 0.0
    try:
        for index in range(3 * N):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            if index == int(rate) and not killed_at:  # one second in
                cluster.kill(port)
                killed_at = time.monotonic()
            replica, metric = replicas[index % 3], metrics[index % 3]
            [wait] = await replica.consume([[check(project, N)]])
            accepted += wait == 0.0
            down_answers += not is_up(metric)
            if killed_at and all(is_up(m) for m in metrics):
                recovered_at = recovered_at or time.monotonic()
            elif not is_up(metric):
                recovered_at = 0.0
        probe = QuotaCheck(f"{project}:probe:project:{project}", 10**9, 86400, None, 1)
        deadline = time.monotonic() + 30
        while not recovered_at:  # the load ended first: keep asking until every replica is back on Redis
            assert time.monotonic() < deadline, "the replicas did not return to Redis"
            await asyncio.gather(*(replica.consume([[probe]]) for replica in replicas))
            if all(is_up(metric) for metric in metrics):
                recovered_at = time.monotonic()
            await asyncio.sleep(0.02)
        # After: a fresh quota of the same project, 3N at once across the replicas, decided by the new master.
        after_check = QuotaCheck(f"{project}:after:project:{project}", N, 86400, None, 1)
        results = await asyncio.gather(*(replicas[i % 3].consume([[after_check]]) for i in range(3 * N)))
        after = sum(wait == 0.0 for [wait] in results)
    finally:
        for replica in replicas:
            await replica.close()
    new_owner = cluster.owner(slot)[1]
    print(
        f"\ncluster master SIGKILL: quota {N}, {3 * N} sent at {rate:g}/s: {accepted} accepted "
        f"({accepted - N} extra, {down_answers} answered by local limiters); slot {slot} moved from port {port} "
        f"to {new_owner}; all replicas on Redis again {recovered_at - killed_at:.2f}s after the kill; "
        f"after: {after} of {3 * N} accepted"
    )
    assert new_owner != port and recovered_at > killed_at
    assert N <= accepted <= N + down_answers + 0.02 * N
    assert after == N


def is_up(metrics: Metrics) -> bool:
    """Whether a replica's quota backend decides with Redis (relay_ratelimit_backend_up is 1)."""
    return metrics.registry.get_sample_value("relay_ratelimit_backend_up", {"backend": "redis"}) == 1.0
