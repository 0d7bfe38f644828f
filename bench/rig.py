"""The test rig: fake upstream, ceiling and relays as processes, and one measured round of each kind.

Every round returns a JSON-ready dict: the load generator's figures (`loadgen.Run.summary`), the
server's CPU over the round, and how busy the rest of the machine was meanwhile (`LoadMeter`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import workload
from loadgen import Pool, get, offer, saturate
from processes import RELAY_CONFIG, LoadMeter, Server, free_port, python, relay_command


class Rig:
    """The fake upstream and the servers under test, with their temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: list[Server] = []
        self.upstream: Server | None = None

    async def start_upstream(self, cpus: set[int] | None) -> Server:
        """The fake upstream every relay forwards to."""
        port = free_port()
        server = Server("fake upstream", python("fake_upstream.py", "--port", str(port)), port, self._log("up"), cpus)
        self.servers.append(server)
        await server.ready("/stats")
        self.upstream = server
        return server

    async def start_ceiling(self, cpus: set[int] | None) -> Server:
        """The no-op server (bench/ceiling.py)."""
        port = free_port()
        server = Server("ceiling", python("ceiling.py", "--port", str(port)), port, self._log("ceiling"), cpus)
        self.servers.append(server)
        await server.ready("/readyz")
        return server

    async def start_relay(self, name: str, cpus: set[int] | None, workers: int | None = None) -> Server:
        """`relay run` on a config written to the temporary directory, with its own spool."""
        assert self.upstream is not None
        port = free_port()
        config = self.tmp / f"{name}.yml"
        config.write_text(
            RELAY_CONFIG.format(
                port=port,
                upstream_port=self.upstream.port,
                project=workload.PROJECT,
                key=workload.PUBLIC_KEY,
                upstream_key=workload.UPSTREAM_KEY,
                upstream_project=workload.UPSTREAM_PROJECT,
                spool=self.tmp / f"{name}-spool",
            )
        )
        server = Server(name, relay_command(config, workers), port, self._log(name), cpus)
        self.servers.append(server)
        await server.ready("/readyz")
        return server

    def _log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def stop(self, server: Server) -> int | None:
        """Stop one server (SIGTERM and drain); its exit code."""
        if server in self.servers:
            self.servers.remove(server)
        return server.stop()

    def close(self) -> None:
        """Stop every server still running, the last started first."""
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    async def delivered(self) -> int:
        """Envelopes the fake upstream has received so far."""
        assert self.upstream is not None
        _, body = await get(self.upstream.port, "/stats")
        count: int = orjson.loads(body)["envelopes"]
        return count

    async def wait_delivery(self, target: int, stall: float = 3.0, timeout: float = 120.0) -> tuple[int, float]:
        """Poll the fake upstream until it has `target` envelopes, or nothing arrives for `stall` seconds
        (the relay dropped some: a scrub that failed closed, say); (count, seconds until the last arrival).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        count, last_change = -1, started
        while True:
            now_count = await self.delivered()
            now = loop.time()
            if now_count != count:
                count, last_change = now_count, now
            if count >= target or now - last_change > stall or now - started > timeout:
                return count, last_change - started
            await asyncio.sleep(0.02)


async def ceiling_round(
    rig: Rig, server: Server, requests: list[bytes], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Closed loop against the ceiling; its CPU over the round."""
    pool = Pool(server.port)
    meter = LoadMeter(rig.servers)
    meter.start()
    cpu = server.cpu_seconds()
    run = await saturate(pool, requests, concurrency, seconds)
    used = server.cpu_seconds() - cpu
    pool.close()
    return run.summary() | _cpu_figures(used, run.seconds, run.ok) | meter.stop()


async def relay_round(
    rig: Rig, server: Server, requests: list[bytes], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Closed loop against a relay, then wait until the upstream has every accepted envelope.

    CPU runs from the first request until the last delivery, so forwarding is paid for too.
    """
    pool = Pool(server.port)
    before = await rig.delivered()
    meter = LoadMeter(rig.servers)
    meter.start()
    user, system = server.cpu_split()
    run = await saturate(pool, requests, concurrency, seconds)
    in_window = server.cpu_seconds() - user - system
    delivered, drain = await rig.wait_delivery(before + run.ok)
    used = server.cpu_seconds() - user - system
    pool.close()
    delivered -= before
    return (
        run.summary()
        | _cpu_figures(used, run.seconds, run.ok)
        | meter.stop()
        | {
            "server_cpu_utilization": round(in_window / run.seconds, 3),
            "server_system_cpu_share": round((server.cpu_split()[1] - system) / used, 3) if used else None,
            "delivered": delivered,
            "drain_seconds": round(drain, 3),
            # Accepted envelopes still in the spool when the load stops are work not yet done:
            # the sustained rate counts the time until the last one reached the upstream.
            "end_to_end_per_second": round(min(run.ok, delivered) / (run.seconds + drain), 1),
        }
    )


async def offered_round(
    rig: Rig,
    relay: Server,
    small: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
    big: list[bytes] | None = None,
    big_rate: float = 0.0,
) -> dict[str, Any]:
    """Small events at `rate` (open loop), with `big` ones at `big_rate` alongside if given; then the drain."""
    loop = asyncio.get_running_loop()
    small_pool, big_pool = Pool(relay.port), Pool(relay.port)
    await small_pool.warm(connections)
    await big_pool.warm(2)
    before = await rig.delivered()
    meter = LoadMeter(rig.servers)
    meter.start()
    user, system = relay.cpu_split()
    start = loop.time() + 0.1
    jobs = [offer(small_pool, small, rate, seconds, connections, start)]
    if big and big_rate > 0:
        jobs.append(offer(big_pool, big, big_rate, seconds, 4, start + 0.25))
    runs = await asyncio.gather(*jobs)
    accepted = sum(r.ok for r in runs)
    delivered, drain = await rig.wait_delivery(before + accepted)
    used = relay.cpu_seconds() - user - system
    small_pool.close()
    big_pool.close()
    result: dict[str, Any] = {
        "with_big": len(runs) > 1,
        "offered_per_second": round(rate, 1),
        "small": runs[0].summary() | {"dispatcher_late_ms": round(runs[0].late * 1000, 2)},
        "small_latencies": runs[0].latencies,
        "accepted": accepted,
        "delivered": delivered - before,
        "drain_seconds": round(drain, 3),
        "server_cpu_utilization": round(used / (seconds + drain), 3),
        "cpu_ms_per_1000_events": round(used / accepted * 1e6, 1) if accepted else None,  # big ones included
        "server_system_cpu_share": round((relay.cpu_split()[1] - system) / used, 3) if used else None,
    } | meter.stop()
    if len(runs) > 1:
        result["big"] = runs[1].summary()
    return result


def _cpu_figures(used: float, seconds: float, events: int) -> dict[str, Any]:
    return {
        "server_cpu_seconds": round(used, 2),
        "server_cpu_utilization": round(used / seconds, 3) if seconds else None,
        "cpu_ms_per_1000_events": round(used / events * 1e6, 1) if events else None,
    }


async def relay_outcomes(server: Server) -> dict[str, float]:
    """relay_outcomes_total summed by outcome/reason, from /metrics."""
    _, body = await get(server.port, "/metrics")
    totals: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("relay_outcomes_total{"):
            labels, _, value = line.rpartition(" ")
            fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            key = f"{fields.get('outcome')}/{fields.get('reason')}"
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals
