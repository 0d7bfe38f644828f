"""Three replicas, Redis, the upstream and the clients as separate hosts; partitions cut under load, then healed.

Topology (each host a network namespace with one address; every line a veth link of its own):

    clients 10.77.0.20 ──┬── a 10.77.0.11 ──┬── redis 10.77.0.1:6379
                         ├── b 10.77.0.12 ──┤
                         └── c 10.77.0.13 ──┴── upstream 10.77.0.2:8000   (each replica has one link to each)

The clients send errors (under one shared project quota of N in Redis) and transactions (no quota) round-robin
to the three replicas, `relay run` processes with a durable spool. After a few seconds A's link to Redis and B's
link to the upstream are cut for 10 s, then healed (a cut is a silent black hole both ways: see `netns`).
Whole-tier figures are printed (`pytest -s`).

What is expected, and asserted: the quota is spent through Redis before the cut, so B and C go on refusing errors.
A, whose script calls now time out, decides with its local limiter, which counts from zero: it lets through up to
its whole local limit of N more (the extras), then refuses too. B answers 200 from its spool, enters outage mode,
and drains the backlog once a probe gets through. C sees nothing. Nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..e2e.test_process import subprocess_env
from ..ratelimit.relay_replicas import roomy_window
from ..support import KEY, PROJECT
from .netns import Topology, ip_binary, reap_stale
from .processes import HostProcess, Hosts, Record

HERE = Path(__file__).resolve().parent
REPLICAS = ("a", "b", "c")
HOSTS = {
    "redis": "10.77.0.1",
    "upstream": "10.77.0.2",
    "a": "10.77.0.11",
    "b": "10.77.0.12",
    "c": "10.77.0.13",
    "clients": "10.77.0.20",
}
LINKS = [(r, "redis") for r in REPLICAS] + [(r, "upstream") for r in REPLICAS] + [("clients", r) for r in REPLICAS]
HOST_OF = {address: host for host, address in HOSTS.items()}
RELAY_PORT, REDIS_PORT, UPSTREAM_PORT = 3000, 6379, 8000

QUOTA = 60  # errors per window, shared by the tier
ERRORS_PER_SECOND = 30.0  # 10 a replica: the quota is spent in about 2 s, before the cut
TRANSACTIONS_PER_SECOND = 45.0  # no quota: what B spools while it can't reach the upstream
BEFORE, PARTITION, AFTER = 4.0, 10.0, 4.0  # seconds of traffic before the cut, while cut, after healing
REDIS_TIMEOUT, RECONNECT = "250ms", 1.0  # ratelimit.timeout (slack for a busy 2-core machine) and .reconnect
UPSTREAM_TIMEOUT, PROBE_MAX = 2.0, 1.0  # upstream.timeout and upstream.outage.probe_max
A_RECOVERY_BOUND = RECONNECT + 2.0  # a probe after `reconnect`, with the next error to A, seen by a scrape
B_DRAIN_BOUND = UPSTREAM_TIMEOUT + PROBE_MAX + 5.0  # a probe stuck on a dead connection, the next one, the drain


def relay_config(replica: str, window: int) -> str:
    """A replica on its host: durable spool, quotas in Redis on the Redis host, the upstream on its host."""
    return f"""
listen: {{host: {HOSTS[replica]}, port: {RELAY_PORT}}}
upstream:
  url: http://{HOSTS["upstream"]}:{UPSTREAM_PORT}
  timeout: {UPSTREAM_TIMEOUT}s
  connect_timeout: 1s
  retry: {{initial: 100ms, max: 1s}}
  batch: {{linger: 1ms}}
  outage: {{after_failures: 3, probe_max: {PROBE_MAX}s}}
shutdown_timeout: 3s
log: {{level: info, format: json}}
rules: []
spool: {{backend: sqlite, path: ./spool}}
outcomes: {{client_reports: false}}
ratelimit: {{backend: redis, url: "redis://{HOSTS["redis"]}:{REDIS_PORT}/0", timeout: {REDIS_TIMEOUT},
            reconnect: {RECONNECT}s}}
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    quotas: [{{id: shared, categories: [error], scope: project, limit: {QUOTA}, window: {window}}}]
"""


@dataclass
class Tier:
    """The built topology and the programs on it."""

    topology: Topology
    hosts: Hosts
    directory: Path

    async def start_redis(self) -> HostProcess:
        """redis-server on the Redis host, answering PING."""
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            pytest.fail("redis-server and redis-cli are needed (Debian's redis-server package)")
        address = HOSTS["redis"]
        options = f"--bind {address} --port {REDIS_PORT} --appendonly no --protected-mode no --dir {self.directory}"
        process = await self.hosts.spawn("redis", "redis", [server, *options.split(), "--save", ""])
        deadline = time.monotonic() + 10
        while await self.redis_cli("PING") != "PONG":
            if process.proc.returncode is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on {address} did not answer:\n{process.tail()}")
            await asyncio.sleep(0.05)
        return process

    async def redis_cli(self, *command: str) -> str:
        """Run one command with redis-cli on the Redis host; its output."""
        argv = self.topology.exec_argv(
            "redis", [shutil.which("redis-cli") or "redis-cli", "-h", HOSTS["redis"], "-p", str(REDIS_PORT), *command]
        )
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await proc.communicate()
        return out.decode().strip()

    async def start_upstream(self) -> HostProcess:
        """The fake upstream on its host."""
        options = f"--host {HOSTS['upstream']} --port {UPSTREAM_PORT}"
        argv = [sys.executable, str(HERE / "upstream_host.py"), *options.split()]
        process = await self.hosts.spawn("upstream", "upstream", argv)
        await process.wait_for(lambda r: "listening" in r, "the upstream to listen", 20)
        return process

    async def start_relay(self, replica: str, window: int) -> HostProcess:
        """`relay run` on a replica's host, in a folder of its own (the spool's)."""
        folder = self.directory / f"replica-{replica}"
        folder.mkdir()
        config = folder / "relay.yml"
        config.write_text(relay_config(replica, window))
        binary = Path(sys.executable).with_name("relay")
        command = [str(binary)] if binary.exists() else [sys.executable, "-m", "relay"]
        return await self.hosts.spawn(
            f"relay-{replica}", replica, [*command, "run", "--config", str(config)], cwd=folder, env=subprocess_env()
        )

    async def start_clients(self) -> HostProcess:
        """The load generator on the clients' host."""
        rates = f"--errors-per-second {ERRORS_PER_SECOND} --transactions-per-second {TRANSACTIONS_PER_SECOND}"
        argv = [sys.executable, str(HERE / "client_host.py"), "--project", str(PROJECT), "--key", KEY, *rates.split()]
        for replica in REPLICAS:
            argv += ["--replica", f"{replica}=http://{HOSTS[replica]}:{RELAY_PORT}"]
        return await self.hosts.spawn("clients", "clients", argv, stdin=True)


@pytest.fixture
async def tier(tmp_path: Path) -> AsyncIterator[Tier]:
    """Six hosts in fresh network namespaces; every program on them and every namespace is gone afterwards."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    if ip_binary() is None:
        pytest.skip("iproute2's ip is not installed (apt-get install -y iproute2)")
    reap_stale()
    topology = Topology(HOSTS, LINKS)
    hosts = Hosts(topology, tmp_path)
    try:
        try:
            topology.build()
        except RuntimeError as exc:
            pytest.fail(f"could not build the hosts' namespaces and links: {exc}")
        yield Tier(topology, hosts, tmp_path)
    finally:
        await hosts.stop_all()
        problems = topology.destroy()
    if problems:  # only reached when the test itself passed: a leak must not hide its failure
        pytest.fail(f"could not remove the namespaces: {problems}")


def scraped(replica: str, since: float) -> Callable[[Record], bool]:
    """Matches a scrape of `replica` taken after `since`."""
    return lambda r: r["ev"] == "metrics" and r["replica"] == replica and r["t"] > since


def samples(clients: HostProcess, replica: str, since: float = 0.0, until: float = float("inf")) -> list[Record]:
    """A replica's scraped gauges taken between two times."""
    return [r for r in clients.records if r["ev"] == "metrics" and r["replica"] == replica and since <= r["t"] < until]


async def wait_delivered(upstream: HostProcess, ids: set[str], timeout: float) -> float:
    """Wait until the upstream has every id; the monotonic time it got the last of them."""
    deadline = time.monotonic() + timeout
    while True:
        first = first_delivery(upstream)
        if ids <= first.keys():
            return max((first[i] for i in ids), default=time.monotonic())
        if time.monotonic() > deadline:
            return float("nan")
        await asyncio.sleep(0.1)


def first_delivery(upstream: HostProcess) -> dict[str, float]:
    """Event id -> when the upstream first received it."""
    first: dict[str, float] = {}
    for record in upstream.records:
        if record.get("id"):
            first.setdefault(record["id"], record["t"])
    return first


async def test_partitions_lose_nothing_and_bound_the_quota_error(tier: Tier) -> None:
    """A cut from Redis and B from the upstream for 10 s: nothing acknowledged is lost, extras <= A's local limit."""
    window = roomy_window(120)
    await tier.start_redis()
    upstream = await tier.start_upstream()
    relays = {replica: await tier.start_relay(replica, window) for replica in REPLICAS}
    clients = await tier.start_clients()
    started = (await clients.wait_for(lambda r: r["ev"] == "ready", "the replicas to be ready", 60))["t"]

    await asyncio.sleep(BEFORE)
    cut = time.monotonic()
    tier.topology.cut("a", "redis")
    tier.topology.cut("b", "upstream")
    await asyncio.sleep(PARTITION)
    tier.topology.heal("a", "redis")
    tier.topology.heal("b", "upstream")
    healed = time.monotonic()
    await asyncio.sleep(AFTER)
    clients.say("stop")
    stopped = (await clients.wait_for(lambda r: r["ev"] == "stopped", "the clients to stop", 30))["t"]

    sent = [r for r in clients.records if r["ev"] == "sent"]
    acked = {r["id"] for r in sent if r["status"] == 200}
    last = await wait_delivered(upstream, acked, timeout=30)
    settled = time.monotonic()  # every replica's spool should now be empty: wait for a scrape that says so
    for replica in REPLICAS:
        await clients.wait_for(scraped(replica, settled), f"a scrape of {replica}", 5)
    assert clients.proc.stdin is not None
    clients.proc.stdin.close()
    counter = await tier.redis_cli("--scan", "--pattern", "relay:q:*")
    redis_count = sum([int(await tier.redis_cli("GET", key) or 0) for key in counter.split()])

    # What the clients were told, and what the upstream got.
    statuses = Counter(r["status"] for r in sent)
    deliveries = Counter(r["id"] for r in upstream.records if r.get("id"))
    first = first_delivery(upstream)
    lost = acked - first.keys()
    refused_but_delivered = {r["id"] for r in sent if r["status"] != 200} & first.keys()
    duplicates = sum(n - 1 for n in deliveries.values())
    duplicated_by = Counter(  # sent again after a timeout, while TCP still delivered the first try late
        next(HOST_OF.get(r["peer"], r["peer"]) for r in upstream.records if r.get("id") == i)
        for i, n in deliveries.items()
        if n > 1
    )

    # The quota: what the tier accepted against N, and who accepted the extras.
    errors = [r for r in sent if r["kind"] == "error" and r["status"] == 200]
    accepted_before_cut = sum(1 for r in errors if r["t"] < cut)
    extras = len(errors) - QUOTA
    a_down = [r["t"] for r in samples(clients, "a", cut) if r["backend_up"] == 0]
    a_back = next((r["t"] for r in samples(clients, "a", healed) if r["backend_up"] == 1), float("nan"))
    a_local = sum(1 for r in errors if r["replica"] == "a" and r["t"] >= cut)  # Redis had none left to give
    others_after_cut = sum(1 for r in errors if r["replica"] != "a" and r["t0"] >= cut)
    a_after_back = sum(1 for r in errors if r["replica"] == "a" and r["t0"] > a_back)

    # B's backlog: what it acknowledged while cut off and the upstream got only after the heal.
    b_acked = {r["id"] for r in sent if r["replica"] == "b" and r["status"] == 200 and r["t"] < healed}
    backlog = {i for i in b_acked if first.get(i, float("inf")) >= healed}
    b_drained = max((first[i] for i in backlog if i in first), default=healed) - healed
    b_spool_peak = max((r["spool_entries"] for r in samples(clients, "b")), default=0.0)
    b_spool_empty = next((r["t"] for r in samples(clients, "b", healed) if r["spool_entries"] == 0), float("nan"))
    b_outage = [r["t"] for r in samples(clients, "b", cut) if r["outage"] == 1]

    # C, and the links nobody cut.
    c_samples = samples(clients, "c")
    c_acked = [r for r in sent if r["replica"] == "c" and r["status"] == 200]
    c_latency = sorted(first[r["id"]] - r["t"] for r in c_acked if r["id"] in first)
    c_answer = sorted(r["t"] - r["t0"] for r in sent if r["replica"] == "c")
    final = {replica: samples(clients, replica, settled)[-1:] for replica in REPLICAS}

    print(
        f"\ntier: 3 replicas, Redis, upstream, clients on 6 hosts; traffic {stopped - started:.1f} s "
        f"({ERRORS_PER_SECOND:g} errors/s, {TRANSACTIONS_PER_SECOND:g} transactions/s), A|Redis and B|upstream "
        f"cut for {healed - cut:.1f} s from t={cut - started:.1f} s"
        f"\n  sent {len(sent)}: {dict(statuses)}; acknowledged {len(acked)}, delivered {len(first)} distinct "
        f"(+{duplicates} duplicates, from {dict(duplicated_by)}), acknowledged but not delivered {len(lost)}, "
        f"refused but delivered {len(refused_but_delivered)}; all delivered "
        f"{max(0.0, last - stopped):.2f} s after the clients stopped"
        f"\n  quota N={QUOTA}: errors accepted {len(errors)} of {sum(1 for r in sent if r['kind'] == 'error')} "
        f"(before the cut {accepted_before_cut}); extras {extras}, of them A deciding locally {a_local} "
        f"(its local limit {QUOTA}); B and C after the cut {others_after_cut}; A once back on Redis {a_after_back}; "
        f"Redis's counter {redis_count}"
        f"\n  A: backend_up 0 seen {(a_down[0] - cut) if a_down else float('nan'):.2f} s after the cut, "
        f"back to 1 {a_back - healed:.2f} s after the heal; logs: "
        f"{[r.get('msg') for r in relays['a'].logged() if 'quota backend' in str(r.get('msg'))]}"
        f"\n  B: backlog {len(backlog)} envelopes (spool peak {b_spool_peak:g}), outage mode seen "
        f"{(b_outage[0] - cut) if b_outage else float('nan'):.2f} s after the cut; backlog delivered "
        f"{b_drained:.2f} s after the heal, spool gauge 0 again {b_spool_empty - healed:.2f} s after"
        f"\n  C: {len(c_acked)} acknowledged, delivery latency p50 {c_latency[len(c_latency) // 2]:.3f} s max "
        f"{c_latency[-1]:.3f} s; answers max {c_answer[-1] * 1000:.0f} ms; spool peak "
        f"{max(r['spool_entries'] for r in c_samples):g}"
    )

    assert set(statuses) <= {200, 429}, f"every envelope answered 200 or 429: {dict(statuses)}"
    assert not lost, f"{len(lost)} acknowledged envelopes never reached the upstream"
    assert not refused_but_delivered, "an envelope answered 429 was forwarded"
    assert accepted_before_cut == QUOTA, "before the cut, Redis held the tier to the shared quota exactly"
    assert a_down, "A never decided locally: the cut didn't separate it from Redis"
    assert 0 < extras <= QUOTA, f"the extras ({extras}) are what A's local limiter let through, at most N"
    assert a_local == extras and others_after_cut == 0 and a_after_back == 0, "only A, deciding locally, overshot"
    assert a_back - healed <= A_RECOVERY_BOUND, f"A back on Redis {a_back - healed:.2f} s after the heal"
    assert backlog, "B spooled nothing while cut off from the upstream"
    assert b_drained <= B_DRAIN_BOUND, f"B's backlog took {b_drained:.2f} s to drain"
    assert all(r["backend_up"] == 1 for r in samples(clients, "b")), "B's link to Redis was never cut"
    assert all(r["outage"] == 0 for r in samples(clients, "a")), "A's link to the upstream was never cut"
    assert all(r["backend_up"] == 1 and r["outage"] == 0 and r["backend_errors"] == 0 for r in c_samples), "C"
    assert c_latency[-1] < 2.0 and c_answer[-1] < 1.0, "C forwarded and answered as if nothing happened"
    for replica, last_sample in final.items():
        assert last_sample and last_sample[0]["spool_entries"] == 0, f"{replica}'s spool is empty at the end"
