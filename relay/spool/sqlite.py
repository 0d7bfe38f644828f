"""A durable spool on SQLite in WAL mode: an envelope is on disk before the client hears 200.

One writer thread owns the connection (relay.spool.writer) and commits in groups. Pending
envelopes live on disk; memory holds only the ids in flight and two counters, however large
the backlog. Ages and retry times run on the spool's timeline (relay.spool.timeline), so a
step of the wall clock neither expires entries early nor delays retries.

The spool refuses envelopes (SpoolFull: the client gets 503) when `max_disk` would be passed,
while the disk is full (draining goes on), and for good once its file was deleted or replaced
under it (it is then unhealthy: the relay is not ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..errors import SpoolFull
from ..logs import log_event
from ..metrics import Metrics
from .base import Entry, headroom
from .statements import EXPIRE_SLICE, OPERATIONS, stub
from .timeline import Timeline
from .writer import DISK_FULL, FILE_LOST, Op, Writer

logger = logging.getLogger("relay.spool")

_OPERATIONS = OPERATIONS  # what the writer runs for each kind of operation (tests swap some out)
_EXPIRY_INTERVAL = 10.0
_EMPTY_DATABASE = 64 * 1024  # schema and index pages, not counted against max_disk
RESERVE = 4 * 1024 * 1024  # bytes of disk held back so that the spool can drain a full disk


class SqliteSpool:
    """Entries in `<path>/spool.db`; survives process crashes, and OS crashes too with `fsync: true`."""

    durable = True

    def __init__(
        self,
        path: str | Path,
        max_disk: int,
        max_age: float,
        fsync: bool,
        clock: Clock,
        on_expired: Callable[[list[Entry]], None] | None = None,
        *,
        metrics: Metrics | None = None,
        reserve: int = RESERVE,
    ) -> None:
        self._dir = Path(path)
        self._max_disk = max_disk
        self._max_age = max_age
        self._clock = clock
        self._time = Timeline(clock)
        self._on_expired = on_expired
        self._writer = Writer(
            self._dir,
            fsync=fsync,
            timeline=self._time,
            clock=clock,
            reserve=reserve,
            pending=self.pending,
            metrics=metrics,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._inflight: set[int] = set()
        self._count = 0
        self._bytes = 0
        self._disk = 0  # pages in use in the database file, refreshed periodically
        self._next_expiry = 0.0
        self._closed = False
        self._refusing: str | None = None  # why pushes are being refused (max_disk, disk_full), while they are
        self._refused = 0  # pushes refused since then
        self._wanted = 0  # the size of the last envelope refused for want of room (0 once one fits)
        self._refusing_since = 0.0
        self.drained = 0  # entries settled and deleted, for the drain-rate metric

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open (or recover) the database and start the writer thread."""
        self._loop = asyncio.get_running_loop()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._time.anchor()
        self._count, self._bytes = await self._writer.start(self._loop)
        if self._count:
            log_event(logger, logging.INFO, "spool recovered", entries=self._count, bytes=self._bytes)
            self._wakeup.set()

    async def close(self) -> list[Entry]:
        """Flush and close; nothing is lost, so nothing is handed back."""
        if self._closed:
            return []
        self._closed = True
        await self._writer.stop()
        return []

    @property
    def healthy(self) -> bool:
        """False once spool.db was deleted or replaced: what the spool acknowledged would be gone at restart."""
        writer = self._writer
        if not writer.lost and writer.opened and not self._closed:
            writer.check_file()
        return not writer.lost

    @property
    def full(self) -> bool:
        """Out of disk space, or less room under `max_disk` than an ordinary envelope needs."""
        used = max(self._bytes, self._disk - _EMPTY_DATABASE)
        return self._writer.disk_full or self._max_disk - used < max(headroom(self._max_disk), self._wanted)

    @property
    def quarantined(self) -> Path | None:
        """Where a corrupt spool.db was moved at start-up (None when it was sound)."""
        return self._writer.quarantined

    # -- the Spool protocol -----------------------------------------------------------

    async def push(self, entry: Entry) -> None:
        """Write the entry durably; SpoolFull when `max_disk` would be passed, or the file is gone."""
        if self._closed:
            raise SpoolFull("spool is closed")
        if self._writer.lost:
            raise SpoolFull(FILE_LOST)
        if self._writer.disk_full:
            raise self._refuse("disk_full", DISK_FULL)
        used = max(self._bytes, self._disk - _EMPTY_DATABASE)
        if used + entry.size > self._max_disk:
            self._wanted = entry.size  # full (not ready) until there is room for it
            raise self._refuse("max_disk", f"spool holds {used} bytes, max_disk is {self._max_disk}")
        self._wanted = 0
        self._bytes += entry.size
        self._count += 1
        received_at = self._time.from_wall(entry.received_at)
        stored = entry if received_at == entry.received_at else dataclasses.replace(entry, received_at=received_at)
        try:
            entry.id = await self._call("insert", stored)
        except BaseException as exc:
            self._bytes -= entry.size
            self._count -= 1
            if isinstance(exc, SpoolFull) and self._writer.disk_full:
                raise self._refuse("disk_full", DISK_FULL) from None
            raise
        if self._refusing is not None:
            log_event(
                logger,
                logging.INFO,
                "spool accepts envelopes again",
                reason=self._refusing,
                refused=self._refused,
                seconds=round(self._time.now() - self._refusing_since, 3),
            )
            self._refusing = None
        self._wakeup.set()

    async def take(self, max_entries: int, linger: float, *, due_only: bool = True) -> list[Entry]:
        """Wait for due entries; return up to `max_entries` (oldest first), lingering briefly to fill up.

        With `due_only=False` (outage probes), entries still waiting out a retry delay count too.
        """
        while True:
            now = self._time.now()
            if now >= self._next_expiry:
                await self._expire(now)
            self._wakeup.clear()
            horizon = now if due_only else float("inf")
            rows = await self._call("select", (horizon, max_entries + len(self._inflight)))
            batch = [e for e in rows if e.id not in self._inflight][:max_entries]
            if batch and len(batch) < max_entries and linger > 0:
                await self._clock.sleep(linger)
                rows = await self._call("select", (self._time.now(), max_entries + len(self._inflight)))
                batch = [e for e in rows if e.id not in self._inflight][:max_entries]
            if batch:
                self._inflight.update(e.id for e in batch)
                step = self._time.step()
                if step:  # received_at as the wall clock reads it now: its age is the monotonic age
                    for e in batch:
                        e.received_at += step
                return batch
            due: float | None = await self._call("next_due", self._time.now())
            timeout = _EXPIRY_INTERVAL if due is None else min(_EXPIRY_INTERVAL, max(0.001, due - self._time.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Delete settled entries."""
        if not entries:
            return
        try:
            await self._call("delete", [e.id for e in entries])
        except BaseException:  # still on disk: let them be taken (and sent) again rather than stuck in flight
            self._inflight.difference_update(e.id for e in entries)
            self._wakeup.set()
            raise
        for entry in entries:
            self._inflight.discard(entry.id)
            self._count -= 1
            self._bytes -= entry.size
        self.drained += len(entries)

    async def retry(self, entry: Entry, delay: float) -> None:
        """Make the entry due again after `delay` seconds."""
        await self._call("retry", (self._time.now() + delay, entry.attempts, entry.id))
        self._inflight.discard(entry.id)
        self._wakeup.set()

    async def release_delayed(self) -> None:
        """Make every waiting entry due now (the upstream is back: drain at full speed)."""
        await self._call("release", self._time.now())
        self._wakeup.set()

    def pending(self) -> int:
        """Entries on disk (waiting, delayed or in flight)."""
        return self._count

    def pending_bytes(self) -> int:
        """Bytes of envelope bodies on disk."""
        return self._bytes

    async def oldest_age(self) -> float:
        """Seconds since the oldest pending entry was received (0 when empty)."""
        oldest: float | None = await self._call("oldest", None)
        return 0.0 if oldest is None else max(0.0, self._time.now() - oldest)

    # -- internals ----------------------------------------------------------------------

    def _refuse(self, reason: str, detail: str) -> SpoolFull:
        """The error for a refused push; the first refusal of an episode is logged, with what the spool holds."""
        if self._refusing != reason:
            self._refusing, self._refused, self._refusing_since = reason, 0, self._time.now()
            log_event(
                logger,
                logging.WARNING,
                "spool full: refusing envelopes",
                reason=reason,
                entries=self._count,
                bytes=self._bytes,
                max_disk=self._max_disk,
            )
        self._refused += 1
        return SpoolFull(detail)

    async def _expire(self, now: float) -> None:
        self._next_expiry = now + _EXPIRY_INTERVAL
        self._writer.check_file()
        # Give freed pages back to the file system, and measure what the file really uses.
        self._disk = await self._call("housekeep", None)
        if self._max_age <= 0:
            return
        expired: list[Entry] = []
        while True:  # in slices, so a huge expired backlog never sits in memory at once
            rows: list[tuple[int, str, int]] = await self._call("expire", (now - self._max_age, tuple(self._inflight)))
            for _, categories, size in rows:
                self._count -= 1
                self._bytes -= size
                expired.append(stub(categories))
            if len(rows) < EXPIRE_SLICE:
                break
        if not expired:
            return
        log_event(logger, logging.WARNING, "spool entries expired", entries=len(expired), max_age=self._max_age)
        if self._on_expired is not None:
            self._on_expired(expired)

    async def _call(self, kind: str, args: Any) -> Any:
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self._writer.ops.put(Op(kind, args, future))
        return await future
