"""The load generator: keep-alive HTTP/1.1 connections writing pre-rendered requests.

Two ways to drive a server:

* `saturate` (closed loop): N connections, each sends its next request as soon as the previous one
  is answered. The completion rate is the server's capacity; latency is per request.
* `offer` (open loop): requests are *scheduled* at a fixed rate and handed to idle connections.
  Latency is measured from the scheduled time, so time spent waiting for a connection counts:
  a stalled server cannot hide its stall by slowing the client (no coordinated omission).

A bare asyncio protocol rather than aiohttp's client: it costs a fraction of the CPU per request,
so one core of load generation can outrun one core of server.
"""

from __future__ import annotations

import asyncio
import math
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class Connection(asyncio.Protocol):
    """One keep-alive connection; `request` writes raw bytes and returns (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        parsed = _parse_response(self.buffer)
        if parsed is not None:
            status, body, used, close = parsed
            del self.buffer[:used]
            if close and self.transport is not None:
                self.transport.close()
            self.waiter.set_result((status, body))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request and wait for its response."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()


def _parse_response(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes used, server closes) once a whole response is buffered, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else None])
        if len(buffer) < end + 4 + length:
            return None
        return status, bytes(buffer[end + 4 : end + 4 + length]), end + 4 + length, close
    if b"\r\ntransfer-encoding: chunked" in head:
        pos, body = end + 4, bytearray()
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body += buffer[line_end + 2 : line_end + 2 + size]
            pos = line_end + 2 + size + 2
            if size == 0:
                return status, bytes(body), pos, close
    return status, b"", end + 4, close  # no body (204, 304, or Content-Length: 0 left out)


class Pool:
    """Connections to one host:port, opened on demand and reopened when the server closes them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def acquire(self) -> Connection:
        """An idle open connection, or a new one."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        _, conn = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", self.port)
        return conn

    def release(self, conn: Connection) -> None:
        """Return a connection for reuse (dropped if the server closed it)."""
        if not conn.closed:
            self.idle.append(conn)

    async def fetch(self, raw: bytes) -> tuple[int, bytes]:
        """One request on a pooled connection."""
        conn = await self.acquire()
        try:
            return await conn.request(raw)
        finally:
            self.release(conn)

    async def warm(self, n: int) -> None:
        """Open `n` connections up front, so connecting is not measured."""
        conns = [await self.acquire() for _ in range(n)]
        for conn in conns:
            self.release(conn)

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass
class Run:
    """What one drive of a server produced."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests only
    statuses: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0  # the load generator's own CPU seconds during the run
    late: float = 0.0  # open loop: how far the dispatcher fell behind its schedule at worst, seconds

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    def summary(self) -> dict[str, Any]:
        """Rates and latency percentiles, JSON-ready."""
        return {
            "seconds": round(self.seconds, 3),
            "requests": sum(self.statuses.values()),
            "ok": self.ok,
            "statuses": dict(self.statuses),
            "events_per_second": round(self.ok / self.seconds, 1) if self.seconds else None,
            "latency_ms": latency_summary(self.latencies),
            "client_cpu_utilization": round(self.client_cpu / self.seconds, 3) if self.seconds else None,
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..1)."""
    if not ordered:
        return math.nan
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def latency_summary(latencies: list[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds, and the sample count."""
    ordered = sorted(latencies)
    out: dict[str, float | int | None] = {"n": len(ordered)}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        out[name] = round(percentile(ordered, q) * 1000, 2) if ordered else None
    out["max"] = round(ordered[-1] * 1000, 2) if ordered else None
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _send(pool: Pool, conn: Connection, raw: bytes) -> tuple[Connection, tuple[int, bytes] | BaseException]:
    """One request; a connection the server closed after its last answer is replaced first."""
    if conn.closed:
        conn = await pool.acquire()
    try:
        return conn, await conn.request(raw)
    except ConnectionError as exc:
        return await pool.acquire(), exc


def _record(run: Run, outcome: tuple[int, bytes] | BaseException, latency: float) -> None:
    if isinstance(outcome, BaseException):
        run.statuses[type(outcome).__name__] += 1
        return
    run.statuses[str(outcome[0])] += 1
    if outcome[0] == 200:
        run.latencies.append(latency)


async def saturate(pool: Pool, requests: Sequence[bytes], concurrency: int, seconds: float) -> Run:
    """Closed loop: `concurrency` connections back to back for `seconds`; latency per request."""
    loop = asyncio.get_running_loop()
    await pool.warm(concurrency)
    run = Run(seconds=0.0)
    cursor = iter(range(10**12))
    deadline = loop.time() + seconds

    async def worker() -> None:
        conn = await pool.acquire()
        try:
            while loop.time() < deadline:
                raw = requests[next(cursor) % len(requests)]
                started = loop.time()
                conn, outcome = await _send(pool, conn, raw)
                _record(run, outcome, loop.time() - started)
        finally:
            pool.release(conn)

    cpu, started = _cpu(), loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = loop.time() - started
    run.client_cpu = _cpu() - cpu
    return run


async def offer(
    pool: Pool, requests: Sequence[bytes], rate: float, seconds: float, connections: int, start_at: float | None = None
) -> Run:
    """Open loop: request i is due at start + i/rate; its latency runs from then, not from when it was sent."""
    loop = asyncio.get_running_loop()
    await pool.warm(connections)
    run = Run(seconds=seconds)
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    start = start_at if start_at is not None else loop.time() + 0.05
    total = max(1, round(rate * seconds))

    async def worker() -> None:
        conn = await pool.acquire()
        try:
            while (job := await due.get()) is not None:
                index, scheduled = job
                conn, outcome = await _send(pool, conn, requests[index % len(requests)])
                _record(run, outcome, loop.time() - scheduled)
        finally:
            pool.release(conn)

    workers = [asyncio.create_task(worker(), name=f"offer-{n}") for n in range(connections)]
    cpu = _cpu()
    for index in range(total):
        scheduled = start + index / rate
        wait = scheduled - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            run.late = max(run.late, -wait)
        due.put_nowait((index, scheduled))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    run.seconds = max(seconds, loop.time() - start)
    run.client_cpu = _cpu() - cpu
    return run


async def get(port: int, path: str) -> tuple[int, bytes]:
    """A one-off GET on a fresh connection (stats, metrics, readiness)."""
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    _, conn = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", port)
    try:
        return await asyncio.wait_for(conn.request(raw), 10)
    finally:
        conn.close()


def now() -> float:
    """The event loop's clock (monotonic), for callers lining up `offer(start_at=...)`."""
    return time.monotonic()
