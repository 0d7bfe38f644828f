"""The `X-Sentry-Rate-Limits` and `Retry-After` headers, parsed and rendered exactly as Sentry does."""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

DEFAULT_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One limit: `retry_after:categories:scope:reason_code:namespaces`; no categories means all."""

    retry_after: float
    categories: frozenset[str]
    scope: str = "organization"
    reason_code: str | None = None
    namespaces: tuple[str, ...] = ()

    def applies_to(self, category: str) -> bool:
        """Whether items of this data category are limited."""
        return not self.categories or category in self.categories

    def render(self, retry_after: float | None = None) -> str:
        """This limit as one `X-Sentry-Rate-Limits` entry (integer seconds, as SDKs parse it)."""
        seconds = max(1, math.ceil(self.retry_after if retry_after is None else retry_after))
        fields = [str(seconds), ";".join(sorted(self.categories)), self.scope]
        if self.reason_code or self.namespaces:
            fields.append(self.reason_code or "")
        if self.namespaces:
            fields.append(";".join(self.namespaces))
        return ":".join(fields)


def parse_rate_limits(header: str) -> list[RateLimit]:
    """Parse an `X-Sentry-Rate-Limits` value; malformed entries are skipped, as SDKs do."""
    limits: list[RateLimit] = []
    for entry in header.split(","):
        fields = entry.strip().split(":")
        if len(fields) < 2:
            continue
        try:
            retry_after = float(fields[0])
        except ValueError:
            continue
        if not math.isfinite(retry_after) or retry_after < 0:
            continue
        categories = frozenset(c.strip() for c in fields[1].split(";") if c.strip())
        scope = fields[2].strip() if len(fields) > 2 and fields[2].strip() else "organization"
        reason = fields[3].strip() if len(fields) > 3 and fields[3].strip() else None
        namespaces = tuple(n for n in fields[4].split(";") if n) if len(fields) > 4 else ()
        limits.append(RateLimit(retry_after, categories, scope, reason, namespaces))
    return limits


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if now is None:
            import time

            now = time.time()
        return max(0.0, when.timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def render_rate_limits(limits: list[tuple[RateLimit, float]]) -> str:
    """Render (limit, seconds left) pairs as one `X-Sentry-Rate-Limits` value."""
    return ", ".join(limit.render(left) for limit, left in limits)
