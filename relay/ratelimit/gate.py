"""The pipeline stage that turns items away while the upstream has them rate limited."""

from __future__ import annotations

from ..outcomes import Outcome, Reason
from ..pipeline import ProcessingContext
from .cache import RateLimitCache


class UpstreamLimitGate:
    """Drops items whose category the upstream limited, so the relay doesn't queue refused work."""

    name = "upstream_limits"

    def __init__(self, cache: RateLimitCache) -> None:
        self._cache = cache

    async def process(self, ctx: ProcessingContext) -> None:
        """Drop limited items and note the limits for the response headers."""
        target = ctx.target
        limited = []
        seen: set[int] = set()
        for item in ctx.envelope.items:
            if item.type == "client_report":
                continue  # outcomes are never rate limited
            hit = self._cache.check(target.base_url, target.project_id, target.public_key, item.category)
            if hit is not None:
                limited.append(item)
                if id(hit[0]) not in seen:
                    seen.add(id(hit[0]))
                    ctx.rate_limits.append(hit)
        refused = {item.category for item in limited}
        limited += [i for i in ctx.envelope.dependents(refused) if all(i is not x for x in limited)]
        ctx.drop(limited, Outcome.RATE_LIMITED, Reason.UPSTREAM_RATE_LIMITED)
