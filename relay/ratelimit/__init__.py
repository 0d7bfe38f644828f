"""Rate limits: the Sentry header format, and limits learned from the upstream."""

from .cache import RateLimitCache
from .ceiling import LimitCeiling
from .header import DEFAULT_RETRY_AFTER, RateLimit, parse_rate_limits, parse_retry_after, render_rate_limits

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "LimitCeiling",
    "RateLimit",
    "RateLimitCache",
    "parse_rate_limits",
    "parse_retry_after",
    "render_rate_limits",
]
