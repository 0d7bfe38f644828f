"""Quota counters kept in this process: the embedded default, and the fallback when Redis is away."""

from __future__ import annotations

from collections.abc import Sequence

from ..clock import Clock
from .quota import QuotaCheck, gcra, window_slot

_PRUNE_EVERY = 4096


class MemoryQuotaBackend:
    """Window counters and burst buckets in dictionaries, pruned as their windows pass."""

    name = "memory"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}  # (key, slot) -> units used
        self._expires: dict[tuple[str, int], float] = {}
        self._tats: dict[str, tuple[float, float]] = {}  # key -> (theoretical arrival time, expiry)
        self._calls = 0

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def consume(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        """Decide each group in order (see `relay.ratelimit.quota`)."""
        return self.consume_now(groups, self._clock.time())

    def consume_now(self, groups: Sequence[Sequence[QuotaCheck]], now: float) -> list[float]:
        """The decision at wall-clock time `now`; synchronous, so it is atomic on the event loop."""
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)
        results: list[float] = []
        for group in groups:
            wait = 0.0
            burst_tats: list[tuple[str, float, int]] = []
            for check in group:
                slot, left = window_slot(now, check.window)
                used = self._counts.get((check.key, slot), 0)
                if used + check.quantity > check.limit:
                    wait = max(wait, left)
                if check.burst is not None:
                    tat = self._tats.get(check.key, (now, 0.0))[0]
                    allowed, new_tat, burst_wait = gcra(tat, now, check)
                    if not allowed:
                        wait = max(wait, burst_wait)
                    burst_tats.append((check.key, new_tat, check.window))
            if wait == 0.0:
                for check in group:
                    slot, left = window_slot(now, check.window)
                    counter = (check.key, slot)
                    self._counts[counter] = self._counts.get(counter, 0) + check.quantity
                    self._expires[counter] = now + left
                for key, new_tat, window in burst_tats:
                    self._tats[key] = (new_tat, new_tat + window)
            results.append(wait)
        return results

    def _prune(self, now: float) -> None:
        for counter in [c for c, expiry in self._expires.items() if expiry <= now]:
            self._expires.pop(counter, None)
            self._counts.pop(counter, None)
        for key in [k for k, (_, expiry) in self._tats.items() if expiry <= now]:
            del self._tats[key]


__all__ = ["MemoryQuotaBackend"]
