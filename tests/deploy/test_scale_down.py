"""Scale-down of the central tier, with real `relay run` processes on the shipped StatefulSet config.

A replica removed by scale-down drains before it exits: on SIGTERM readiness goes off and the forwarder sends
what the spool holds until `shutdown_timeout`; what is left stays on the replica's PersistentVolumeClaim and is
sent when a pod with that ordinal starts on it again. Here a directory stands for the claim of ordinal 2, and a
second process on the same directory for the pod that comes back. Nothing acknowledged may be lost.

The drain budget is shortened (the manifest's 30 s would make each test wait that long); what is checked
against the manifest is the rest: the time a replica takes past its budget must fit in the margin its
terminationGracePeriodSeconds leaves after the preStop sleep and shutdown_timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from ..e2e.test_durability import upstream_on
from ..e2e.test_process import RelayProcess, event_envelope, post_envelope, subprocess_env
from ..support import PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, Reply, auth_header, free_port
from .manifests import CENTRAL, mounted_config_map, objects_in, pod_spec, prestop_seconds, relay_config, relay_container

_STS = objects_in(CENTRAL)[("StatefulSet", "relay")]
_CONFIG = relay_config(_STS, objects_in(CENTRAL))
# What terminationGracePeriodSeconds leaves for a replica to finish after its drain budget is spent.
GRACE_MARGIN = (
    pod_spec(_STS)["terminationGracePeriodSeconds"] - prestop_seconds(relay_container(_STS)) - _CONFIG.shutdown_timeout
)
SPOOL_ENTRIES = re.compile(r"^relay_spool_entries (\S+)$", re.MULTILINE)


def replica_config(port: int, upstream_port: int, claim: Path, shutdown_timeout: float, **extra: Any) -> str:
    """The StatefulSet's relay.yml, made local: listen port, upstream, the claim's spool path, the drain budget."""
    _, text = mounted_config_map(_STS, objects_in(CENTRAL))
    data = yaml.safe_load(text)
    data["listen"] = {"host": "127.0.0.1", "port": port}
    data["upstream"]["url"] = f"http://127.0.0.1:{upstream_port}"  # never sentry.io from a test
    # /var/lib/relay is the claim's mount; the spool keeps its place under it.
    data["spool"]["path"] = str(claim / Path(_CONFIG.spool.path).relative_to("/var/lib/relay"))
    data["shutdown_timeout"] = f"{shutdown_timeout}s"
    for key, value in extra.items():
        data.setdefault(key, {}).update(value)
    return yaml.safe_dump(data, sort_keys=False)


@dataclass
class Replicas:
    """Starts `relay run` processes as a StatefulSet's pods would, each on a claim (a directory)."""

    root: Path
    started: list[RelayProcess] = field(default_factory=list)

    async def start(self, claim: Path, port: int, upstream_port: int, shutdown_timeout: float, **extra: Any) -> Any:
        """Start a replica on `claim` and wait until it is ready."""
        claim.mkdir(parents=True, exist_ok=True)
        path = self.root / f"relay-{len(self.started)}.yml"
        path.write_text(replica_config(port, upstream_port, claim, shutdown_timeout, **extra))
        env = subprocess_env(
            SENTRY_DSN=f"http://{UPSTREAM_KEY}@127.0.0.1:{upstream_port}/{UPSTREAM_PROJECT}",
            RELAY_RATELIMIT_BACKEND="memory",  # no Redis here; sharing quotas is tests/ratelimit's subject
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "relay", "run", "--config", str(path)),
            cwd=str(self.root),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        relay = RelayProcess(proc, port)
        relay._reader = asyncio.create_task(relay._read_stderr())
        self.started.append(relay)
        async with aiohttp.ClientSession() as session:
            await relay.wait_ready(session)
        return relay


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    """Relay processes in tmp_path; any still running at teardown are killed."""
    made = Replicas(tmp_path)
    yield made
    for relay in made.started:
        if relay.proc.returncode is None:
            relay.proc.kill()
            await relay.proc.wait()
        if relay._reader is not None:
            relay._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay._reader


@dataclass
class Termination:
    """How a replica stopped after SIGTERM."""

    code: int
    seconds: float
    readiness: list[int | str]  # /readyz answers from the 'shutting down' log on ("refused": the listener is shut)
    queued: int  # entries in the spool at SIGTERM
    stopped: dict[str, Any]  # the 'relay stopped' log record


async def terminate(relay: RelayProcess) -> Termination:
    """SIGTERM the replica, probe /readyz as the kubelet would until it exits, and collect what it logged."""
    started = time.monotonic()
    exited = asyncio.ensure_future(relay.proc.wait())
    relay.proc.send_signal(signal.SIGTERM)
    shutting = await relay.wait_log("shutting down")
    readiness: list[int | str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while not exited.done():
            try:
                async with session.get(f"{relay.url}/readyz") as resp:
                    readiness.append(resp.status)
            except (aiohttp.ClientError, TimeoutError):
                readiness.append("refused")
            await asyncio.wait([exited], timeout=0.05)
    code = await exited
    seconds = time.monotonic() - started
    assert relay._reader is not None
    await asyncio.wait_for(relay._reader, 5)
    stopped = relay.log("relay stopped")
    assert stopped is not None, "\n".join(relay.raw)
    return Termination(code, seconds, readiness, int(shutting["queued"]), stopped)


async def post_events(relay: RelayProcess, count: int, label: str) -> list[str]:
    """Post `count` distinct events (8 at a time), each acknowledged with 200; return their ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    slots = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def post(n: int, event_id: str) -> None:
            async with slots:
                await post_envelope(session, relay, event_envelope(event_id, f"{label} {n}"))

        await asyncio.gather(*(post(n, event_id) for n, event_id in enumerate(ids)))
    return ids


async def spool_entries(relay: RelayProcess) -> int:
    """The replica's relay_spool_entries gauge."""
    async with aiohttp.ClientSession() as session, session.get(f"{relay.url}/metrics") as resp:
        match = SPOOL_ENTRIES.search(await resp.text())
    assert match, "no relay_spool_entries in /metrics"
    return int(float(match.group(1)))


async def wait_spool_empty(relay: RelayProcess, timeout: float = 20.0) -> None:
    """Wait until the replica's spool holds nothing (every send answered, every entry deleted)."""
    deadline = time.monotonic() + timeout
    while (left := await spool_entries(relay)) > 0:
        assert time.monotonic() < deadline, f"{left} entries still in the spool"
        await asyncio.sleep(0.05)


def event_ids(upstream: FakeUpstream) -> Counter[str]:
    """How often the upstream accepted each event (client reports and other envelopes left out)."""
    return Counter(
        str(r.envelope.event_id) for r in upstream.received if any(i.type == "event" for i in r.envelope.items)
    )


async def wait_delivered(upstream: FakeUpstream, ids: Iterable[str], timeout: float = 30.0) -> None:
    """Wait until the upstream accepted every one of `ids`."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while missing := wanted - set(event_ids(upstream)):
        assert time.monotonic() < deadline, f"{len(missing)} of {len(wanted)} acknowledged events never arrived"
        await asyncio.sleep(0.05)


def report(title: str, **figures: Any) -> None:
    """Print the measured figures (visible with pytest -s)."""
    print(f"\n{title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def test_scale_down_during_an_outage_keeps_the_spool_for_the_same_ordinal(replicas: Replicas) -> None:
    """Upstream down, 200 events piled up, SIGTERM: readiness off, exit within the grace period, all 200 left on
    the claim; a new replica on the same claim delivers every acknowledged event exactly once."""
    budget = 3.0
    upstream_port, port = free_port(), free_port()
    claim = replicas.root / "spool-relay-2"
    upstream = FakeUpstream()
    async with upstream_on(upstream_port, upstream):
        first = await replicas.start(claim, port, upstream_port, budget)
        early = await post_events(first, 20, "before the outage")
        await wait_delivered(upstream, early)
        await wait_spool_empty(first)  # every send answered: nothing is in flight when the upstream goes
    piled = await post_events(first, 200, "during the outage")
    assert await spool_entries(first) == 200

    stop = await terminate(first)
    delivered_before_exit = len(set(event_ids(upstream)) & set(piled))
    assert stop.code == 0, "\n".join(first.raw)
    assert stop.readiness and 200 not in stop.readiness, stop.readiness
    assert budget - 1 <= stop.seconds < budget + GRACE_MARGIN, f"exit took {stop.seconds:.1f}s"
    assert stop.queued == 200
    assert stop.stopped["drained"] is False
    assert stop.stopped["left_in_spool"] == 200
    assert stop.stopped["lost_envelopes"] == 0
    assert delivered_before_exit == 0

    async with upstream_on(upstream_port, upstream):
        second = await replicas.start(claim, port, upstream_port, budget)  # the same ordinal, back on its claim
        assert (await second.wait_log("spool recovered"))["entries"] == 200
        await wait_delivered(upstream, piled)
        await wait_spool_empty(second)
        restarted = await terminate(second)
    counts = event_ids(upstream)
    assert set(counts) == set(early) | set(piled)
    assert {n for n in counts.values()} == {1}, "an acknowledged event was delivered more than once"
    assert restarted.stopped["left_in_spool"] == 0
    report(
        "outage",
        in_spool_at_sigterm=stop.queued,
        delivered_before_exit=delivered_before_exit,
        left_on_claim=stop.stopped["left_in_spool"],
        delivered_after_restart=len(set(counts) & set(piled)),
        lost=len(set(piled) - set(counts)),
        duplicates=sum(counts.values()) - len(counts),
        seconds_to_exit=round(stop.seconds, 2),
        readiness_after_sigterm=dict(Counter(stop.readiness)),
    )


@pytest.mark.parametrize(
    ("events", "delay", "budget"),
    [(120, 0.25, 10.0), (300, 0.5, 2.0)],
    ids=["budget-enough", "budget-runs-out"],
)
async def test_scale_down_with_a_slow_upstream_drains_before_exit(
    replicas: Replicas, upstream: FakeUpstream, events: int, delay: float, budget: float
) -> None:
    """Upstream up but slow, SIGTERM with a backlog: what the budget allows is delivered before the exit, the rest
    stays on the claim and the next replica on it delivers it. Zero lost; a duplicate only for a send cut off at
    the deadline (the upstream got it, the answer never came back), which Sentry drops by event id."""
    upstream.script = [Reply(delay=delay)] * 100_000
    upstream_port = int(upstream.url.rsplit(":", 1)[1])
    port = free_port()
    claim = replicas.root / "spool-relay-2"
    first = await replicas.start(claim, port, upstream_port, budget)
    acked = await post_events(first, events, "slow upstream")

    stop = await terminate(first)
    delivered_before_exit = len(set(event_ids(upstream)) & set(acked))
    assert stop.code == 0, "\n".join(first.raw)
    assert stop.readiness and 200 not in stop.readiness, stop.readiness
    assert stop.seconds < budget + GRACE_MARGIN, f"exit took {stop.seconds:.1f}s"
    assert stop.queued > 0, "SIGTERM came after the backlog was gone: nothing was drained"
    assert stop.stopped["lost_envelopes"] == 0
    left = stop.stopped["left_in_spool"]
    assert (left == 0) is stop.stopped["drained"]
    if budget == 10.0:
        assert left == 0 and delivered_before_exit == events, "the budget was enough to send everything"
    else:
        assert left > 0, "the budget was meant to run out"

    upstream.script.clear()  # the upstream recovers: fast answers
    await asyncio.sleep(delay)  # sends cut off at the deadline reach the fake upstream too
    second = await replicas.start(claim, port, upstream_port, budget)
    await wait_delivered(upstream, acked)
    await wait_spool_empty(second)
    restarted = await terminate(second)
    counts = event_ids(upstream)
    duplicates = sum(counts.values()) - len(counts)
    assert set(counts) == set(acked), "an acknowledged event was lost (or an unknown one appeared)"
    assert duplicates <= _CONFIG.upstream.concurrency, "only sends in flight at the deadline may repeat"
    if left == 0:
        assert duplicates == 0
        assert second.log("spool recovered") is None
    else:
        assert (await second.wait_log("spool recovered"))["entries"] == left
    assert restarted.stopped["left_in_spool"] == 0
    report(
        f"slow upstream ({delay}s per send, budget {budget}s)",
        acknowledged=events,
        in_spool_at_sigterm=stop.queued,
        delivered_before_exit=delivered_before_exit,
        left_on_claim=left,
        delivered_after_restart=len(set(acked)) - delivered_before_exit,
        lost=len(set(acked) - set(counts)),
        duplicates=duplicates,
        seconds_to_exit=round(stop.seconds, 2),
        readiness_after_sigterm=dict(Counter(stop.readiness)),
    )


async def test_readiness_follows_a_full_spool_while_liveness_holds(replicas: Replicas) -> None:
    """The probes as the StatefulSet wires them: a full spool makes /readyz 503 (out of the Service) while
    /healthz stays 200 (no restart); once the upstream is back and the spool drained, /readyz is 200 again."""
    upstream_port, port = free_port(), free_port()
    claim = replicas.root / "spool-relay-0"
    relay = await replicas.start(
        claim,
        port,
        upstream_port,
        3.0,
        spool={"max_disk": "256KiB"},
        upstream={"outage": {"probe_max": "500ms"}},
    )
    posted = 0
    async with aiohttp.ClientSession() as session:
        while True:
            event_id = uuid.uuid4().hex
            body = event_envelope(event_id, "fills the spool " + "x" * 2000)
            async with session.post(f"{relay.url}/api/{PROJECT}/envelope/", data=body, headers=auth_header()) as resp:
                if resp.status == 503:
                    break
                assert resp.status == 200, await resp.text()
            posted += 1
            assert posted < 2000, "the spool never filled"
        ready, live = await _probe(session, relay)
        assert (ready, live) == (503, 200)

        upstream = FakeUpstream()
        async with upstream_on(upstream_port, upstream):
            await upstream.wait_for(posted, timeout=30)
            deadline = time.monotonic() + 15
            while (ready := (await _probe(session, relay))[0]) != 200:
                assert time.monotonic() < deadline, "never ready again after the spool drained"
                await asyncio.sleep(0.1)
            await terminate(relay)
    report("full spool", acknowledged_until_full=posted, readyz_when_full=503, healthz_when_full=200)


async def _probe(session: aiohttp.ClientSession, relay: RelayProcess) -> tuple[int, int]:
    """(/readyz status, /healthz status)."""
    async with session.get(f"{relay.url}/readyz") as ready, session.get(f"{relay.url}/healthz") as live:
        return ready.status, live.status
