"""The pipeline stage that turns items away while the upstream has them rate limited."""

from __future__ import annotations

from ..envelope import Item
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
        limited: dict[str, list[Item]] = {}  # by reason: the upstream's reason code, as Relay reports it
        seen: set[int] = set()
        for item in ctx.envelope.items:
            if item.type == "client_report":
                continue  # outcomes are never rate limited
            hit = self._cache.check(target.base_url, target.project_id, target.public_key, item.category)
            if hit is not None:
                reason = hit[0].reason_code if _is_code(hit[0].reason_code) else Reason.UPSTREAM_RATE_LIMITED
                limited.setdefault(str(reason), []).append(item)
                if id(hit[0]) not in seen:
                    seen.add(id(hit[0]))
                    ctx.rate_limits.append(hit)
        if not limited:
            return
        refused = {item.category for items in limited.values() for item in items}
        first = next(iter(limited.values()))
        first += [i for i in ctx.envelope.dependents(refused) if all(i is not x for x in first)]
        for reason, items in limited.items():
            ctx.drop(items, Outcome.RATE_LIMITED, reason)


def _is_code(value: str | None) -> bool:
    """A reason code as Sentry writes them (`usage_exceeded`): a short snake_case name, fit for a metric label."""
    return value is not None and 0 < len(value) <= 64 and value.replace("_", "").isalnum() and value.isascii()
