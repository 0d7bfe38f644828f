"""Rate limits the upstream told us about, remembered per scope until they expire."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import Clock
from .header import RateLimit

# A scope key: (upstream base URL, project id or "", public key or "").
ScopeKey = tuple[str, str, str]


def scope_key(base_url: str, project_id: str, public_key: str, scope: str) -> ScopeKey:
    """Where a limit of this scope, learned through this target, is kept."""
    if scope == "key":
        return (base_url, project_id, public_key)
    if scope == "project":
        return (base_url, project_id, "")
    return (base_url, "", "")  # organization, and scopes we don't know: the widest is the safe reading


@dataclass(frozen=True, slots=True)
class ActiveLimit:
    """A remembered limit and the monotonic time it ends."""

    limit: RateLimit
    until: float


class RateLimitCache:
    """Remembers upstream limits by organization, project and key; answers "is this limited now?"."""

    def __init__(self, clock: Clock, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._limits: dict[ScopeKey, list[ActiveLimit]] = {}

    def remember(self, base_url: str, project_id: str, public_key: str, limits: list[RateLimit]) -> None:
        """Store limits from an upstream response for the target they came from."""
        now = self._clock.monotonic()
        for limit in limits:
            if limit.retry_after <= 0:
                continue
            key = scope_key(base_url, project_id, public_key, limit.scope)
            until = now + limit.retry_after
            current = [a for a in self._limits.get(key, []) if a.until > now]
            if any(a.limit.categories == limit.categories and a.until >= until for a in current):
                continue  # a longer limit on the same categories is already active
            current = [a for a in current if a.limit.categories != limit.categories]
            current.append(ActiveLimit(limit, until))
            self._limits[key] = current
        if len(self._limits) > self._max_entries:
            self._prune(now)

    def check(self, base_url: str, project_id: str, public_key: str, category: str) -> tuple[RateLimit, float] | None:
        """The active limit on this category with the most time left, as (limit, seconds left)."""
        now = self._clock.monotonic()
        best: tuple[RateLimit, float] | None = None
        for key in ((base_url, project_id, public_key), (base_url, project_id, ""), (base_url, "", "")):
            for active in self._limits.get(key, ()):
                left = active.until - now
                if left > 0 and active.limit.applies_to(category) and (best is None or left > best[1]):
                    best = (active.limit, left)
        return best

    def active(self) -> int:
        """How many remembered limits are in force now."""
        now = self._clock.monotonic()
        return sum(1 for limits in self._limits.values() for a in limits if a.until > now)

    def _prune(self, now: float) -> None:
        for key in list(self._limits):
            alive = [a for a in self._limits[key] if a.until > now]
            if alive:
                self._limits[key] = alive
            else:
                del self._limits[key]
