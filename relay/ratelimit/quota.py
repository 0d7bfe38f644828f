"""Quotas (`projects[].quotas`, see `QuotaConfig`): how many items of some categories a project, or
one of its keys, may send per window.

Every backend decides with the same arithmetic, so replicas sharing Redis and a relay on its own agree:

- **Window.** Fixed windows aligned to the epoch (`slot = floor(now / window)`), as Sentry counts
  quotas. At most `limit` units are accepted per slot; a request that would pass the limit is refused
  whole and consumes nothing. `retry_after` is the time left in the slot.
- **Burst** (optional). A token bucket on top, as GCRA: it holds `burst` units and refills at
  `limit / window` per second, so traffic is smoothed inside the window. `retry_after` is the time until
  enough has refilled.

A check names a counter (`key`); checks are grouped, one group per data category of an envelope. A group
is accepted only if all of its checks fit, and then all of them consume; groups are decided in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..outcomes import BYTE_CATEGORIES


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """One counter to draw `quantity` units from."""

    key: str  # unique per quota and scope: "<project>:<quota id>:<project id or public key>"
    limit: int
    window: int
    burst: int | None
    quantity: int


class QuotaBackend(Protocol):
    """Where quota counters live: this process (memory) or shared by replicas (Redis)."""

    name: str

    async def start(self) -> None:
        """Connect, if there is anything to connect to."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def consume(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        """Decide each group in order: 0.0 if accepted (and consumed), else seconds until it may fit."""
        ...


def window_slot(now: float, window: int) -> tuple[int, float]:
    """The window slot `now` falls in, and the seconds left in it."""
    slot = math.floor(now / window)
    return slot, (slot + 1) * window - now


def gcra(tat: float, now: float, check: QuotaCheck) -> tuple[bool, float, float]:
    """One burst decision: (allowed, new theoretical arrival time, seconds to wait if refused)."""
    assert check.burst is not None
    interval = check.window / check.limit if check.limit > 0 else math.inf
    if check.quantity > check.burst or not math.isfinite(interval):
        return False, tat, float(check.window)
    new_tat = max(tat, now) + check.quantity * interval
    allowed_at = new_tat - check.burst * interval
    if allowed_at <= now:
        return True, new_tat, 0.0
    return False, tat, allowed_at - now


__all__ = ["BYTE_CATEGORIES", "QuotaBackend", "QuotaCheck", "gcra", "window_slot"]
