"""A ceiling on the rate limits an upstream announces: one absurd answer must not stop forwarding until restart.

`Retry-After: 1e308` or `X-Sentry-Rate-Limits: 31536000::organization` would otherwise refuse every item
for a year (and tell SDKs to wait that long). A limit over the ceiling is honoured for the ceiling's length,
and logged once per episode: again only after it has lapsed and the upstream announces another.
"""

from __future__ import annotations

import dataclasses
import logging

from ..clock import Clock
from ..logs import log_event
from .cache import ScopeKey, scope_key
from .header import RateLimit

logger = logging.getLogger("relay.forward")

_MAX_EPISODES = 10_000


class LimitCeiling:
    """Cuts announced limits to `max_seconds`, saying so once per scope and categories while the cut one lasts."""

    def __init__(self, max_seconds: float, clock: Clock) -> None:
        self._max = max_seconds
        self._clock = clock
        self._episodes: dict[tuple[ScopeKey, frozenset[str]], float] = {}  # monotonic end of each cut limit

    def clamp(self, base_url: str, project_id: str, public_key: str, limits: list[RateLimit]) -> list[RateLimit]:
        """The limits, each no longer than the ceiling."""
        if all(limit.retry_after <= self._max for limit in limits):
            return limits
        now = self._clock.monotonic()
        clamped: list[RateLimit] = []
        for limit in limits:
            if limit.retry_after <= self._max:
                clamped.append(limit)
                continue
            episode = (scope_key(base_url, project_id, public_key, limit.scope), limit.categories)
            if self._episodes.get(episode, 0.0) <= now:
                log_event(
                    logger,
                    logging.WARNING,
                    "upstream announced a rate limit over upstream.max_rate_limit; honouring it for the maximum",
                    url=base_url,
                    project=project_id if limit.scope in ("project", "key") else "",
                    scope=limit.scope,
                    categories=";".join(sorted(limit.categories)) or "all",
                    announced=limit.retry_after,
                    max_rate_limit=self._max,
                )
            self._episodes[episode] = now + self._max
            clamped.append(dataclasses.replace(limit, retry_after=self._max))
        if len(self._episodes) > _MAX_EPISODES:
            self._episodes = {k: until for k, until in self._episodes.items() if until > now}
        return clamped
