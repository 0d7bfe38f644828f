"""Exponential backoff with full jitter, as one pure function."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..config import RetryConfig


def backoff_delay(attempt: int, policy: RetryConfig, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number `attempt` (1-based): uniform in [0, min(max, initial * multiplier**(attempt-1))]."""
    exponent = max(0, attempt - 1)
    try:
        ceiling = policy.initial * policy.multiplier**exponent
    except OverflowError:
        ceiling = policy.max
    return rand() * min(policy.max, ceiling)
