"""Several relay apps ("replicas") sharing one quota through Redis, and envelopes sent to them over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from ..conftest import RelayFactory, state_of
from ..support import KEY, PROJECT, FakeUpstream, auth_header, envelope_bytes

EVENT = ({"type": "event"}, orjson.dumps({"message": "hello"}))


def roomy_window(minimum: float = 600.0) -> int:
    """A quota window (1 day, or 25 hours) with at least `minimum` seconds left in its current slot, so no test
    sees its counters reset halfway."""
    now = time.time()
    for window in (86400, 90000, 97200):
        if window - now % window > minimum:
            return window
    raise AssertionError("unreachable: the three windows' slot boundaries are hours apart")


def ratelimit_yaml(url: str, *, cluster: bool = False, timeout: str = "1s", reconnect: str = "1s", **extra: str) -> str:
    """A `ratelimit` section for the Redis at `url`, under a key prefix of its own."""
    fields = {
        "backend": "redis",
        "url": f"'{url}'",
        "cluster": str(cluster).lower(),
        "timeout": timeout,
        "reconnect": reconnect,
        "key_prefix": f"t{uuid.uuid4().hex[:12]}",
        **extra,
    }
    return "ratelimit: {" + ", ".join(f"{name}: {value}" for name, value in fields.items()) + "}\n"


def quota_projects(upstream: FakeUpstream, quotas: list[tuple[str, int, int]]) -> str:
    """Project 42, forwarding to the fake upstream, with project-wide error quotas (id, limit, window)."""
    dsn = f"{upstream.url.replace('://', '://upkey@')}/4501"
    rows = ", ".join(
        f"{{id: {quota_id}, categories: [error], scope: project, limit: {limit}, window: {window}}}"
        for quota_id, limit, window in quotas
    )
    return f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}"
    quotas: [{rows}]
"""


async def start_replicas(make_relay: RelayFactory, ratelimit: str, projects: str, count: int = 3) -> list[Any]:
    """`count` relay apps with the same config: replicas behind one load balancer."""
    return [await make_relay(ratelimit, projects=projects) for _ in range(count)]


@dataclass
class Tally:
    """What the SDKs were answered."""

    accepted: int = 0
    refused: int = 0
    other: list[int] = field(default_factory=list)
    sent_at: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic time, replica, status)


async def send_events(
    clients: list[TestClient[Any, Any]], total: int, *, concurrency: int = 48, rate: float | None = None
) -> Tally:
    """Send `total` one-event envelopes round-robin across the replicas; `rate`: envelopes per second, else at once."""
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)
    body = envelope_bytes({"event_id": "a" * 32}, EVENT)
    started = time.monotonic()

    async def one(index: int) -> None:
        if rate is not None:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        async with gate:
            replica = index % len(clients)
            answer = await clients[replica].post(f"/api/{PROJECT}/envelope/", data=body, headers=auth_header())
            await answer.read()
        tally.sent_at.append((time.monotonic(), replica, answer.status))
        if answer.status == 200:
            tally.accepted += 1
        elif answer.status == 429:
            tally.refused += 1
        else:
            tally.other.append(answer.status)

    await asyncio.gather(*(one(index) for index in range(total)))
    return tally


def backend_errors(clients: list[TestClient[Any, Any]]) -> float:
    """relay_ratelimit_backend_errors_total summed over the replicas."""
    total = 0.0
    for client in clients:
        for metric in state_of(client).metrics.ratelimit_backend_errors.collect():
            total += sum(sample.value for sample in metric.samples if sample.name.endswith("_total"))
    return total


def backend_up(client: TestClient[Any, Any]) -> bool:
    """Whether a replica decides with Redis (relay_ratelimit_backend_up is 1)."""
    value = state_of(client).metrics.registry.get_sample_value("relay_ratelimit_backend_up", {"backend": "redis"})
    return value == 1.0


__all__ = [
    "EVENT",
    "Tally",
    "backend_errors",
    "backend_up",
    "quota_projects",
    "ratelimit_yaml",
    "roomy_window",
    "send_events",
    "start_replicas",
]
