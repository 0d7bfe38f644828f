"""An in-memory spool: a ready queue plus a timer heap for retries, bounded by count and bytes."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from collections.abc import Sequence

from ..clock import Clock
from ..errors import SpoolFull
from .base import Entry, headroom


class MemorySpool:
    """Holds entries in process memory; what is still held at close is lost (see README)."""

    durable = False

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._ready: deque[Entry] = deque()
        self._delayed: list[tuple[float, int, Entry]] = []
        self._held: dict[int, Entry] = {}
        self._bytes = 0
        self._wanted = 0  # the size of the last entry refused for want of room (0 once one fits)
        self._ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self._closed = False

    async def start(self) -> None:
        """Nothing to recover in memory."""

    @property
    def healthy(self) -> bool:
        """Memory does not go away under a running process."""
        return True

    @property
    def full(self) -> bool:
        """The count bound is reached, or less room than an ordinary envelope needs is left."""
        room = self._max_bytes - self._bytes
        return len(self._held) >= self._max_entries or room < max(headroom(self._max_bytes), self._wanted)

    async def push(self, entry: Entry) -> None:
        """Queue an entry, or raise SpoolFull when count or bytes would pass the bounds."""
        if self._closed:
            raise SpoolFull("spool is closed")
        if len(self._held) >= self._max_entries or self._bytes + entry.size > self._max_bytes:
            self._wanted = entry.size  # full (not ready) until there is room for it
            raise SpoolFull(f"queue holds {len(self._held)} envelopes, {self._bytes} bytes")
        self._wanted = 0
        entry.id = next(self._ids)
        self._held[entry.id] = entry
        self._bytes += entry.size
        self._ready.append(entry)
        self._wakeup.set()

    async def take(self, max_entries: int, linger: float, *, due_only: bool = True) -> list[Entry]:
        """Wait until an entry is ready, linger briefly for more, then return a batch.

        With `due_only=False` (outage probes), entries still waiting out a retry delay count too.
        """
        if not due_only and not self._ready and self._delayed:
            await self.release_delayed()
        while True:
            self._promote_due()
            if self._ready:
                break
            timeout = None
            if self._delayed:
                timeout = max(0.0, self._delayed[0][0] - self._clock.monotonic())
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
        if linger > 0 and len(self._ready) < max_entries:
            await self._clock.sleep(linger)
            self._promote_due()
        batch: list[Entry] = []
        while self._ready and len(batch) < max_entries:
            batch.append(self._ready.popleft())
        return batch

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Release entries that are settled."""
        for entry in entries:
            if self._held.pop(entry.id, None) is not None:
                self._bytes -= entry.size

    async def retry(self, entry: Entry, delay: float) -> None:
        """Put an entry back, ready after `delay` seconds."""
        if entry.id not in self._held:
            return
        heapq.heappush(self._delayed, (self._clock.monotonic() + delay, entry.id, entry))
        self._wakeup.set()

    async def release_delayed(self) -> None:
        """Make every delayed entry ready now."""
        while self._delayed:
            _, _, entry = heapq.heappop(self._delayed)
            if entry.id in self._held:
                self._ready.append(entry)
        self._wakeup.set()

    async def oldest_age(self) -> float:
        """Seconds since the oldest held entry was received."""
        if not self._held:
            return 0.0
        return max(0.0, self._clock.time() - min(e.received_at for e in self._held.values()))

    def pending(self) -> int:
        """Entries held: ready, delayed and in flight."""
        return len(self._held)

    def pending_bytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def ready_now(self) -> int:
        """Entries that could be sent right now (ready or due)."""
        self._promote_due()
        return len(self._ready)

    async def close(self) -> list[Entry]:
        """Stop accepting; hand back everything still held, since memory does not survive the process."""
        self._closed = True
        lost = list(self._held.values())
        self._held.clear()
        self._ready.clear()
        self._delayed.clear()
        self._bytes = 0
        return lost

    def _promote_due(self) -> None:
        now = self._clock.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, entry = heapq.heappop(self._delayed)
            if entry.id in self._held:
                self._ready.append(entry)
