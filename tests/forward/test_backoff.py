"""backoff_delay: exponential growth, a cap, and full jitter."""

from __future__ import annotations

import random

import pytest

from relay.config import RetryConfig
from relay.forward import backoff_delay

POLICY = RetryConfig(initial=0.5, max=60.0, multiplier=2.0)


def one() -> float:
    """The top of the jitter range."""
    return 1.0


def zero() -> float:
    """The bottom of the jitter range."""
    return 0.0


def test_grows_exponentially_at_the_top_of_the_range() -> None:
    """With rand() == 1 the delay is initial * multiplier**(attempt-1)."""
    assert [backoff_delay(n, POLICY, one) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_other_multipliers() -> None:
    """The multiplier is the growth factor per attempt."""
    policy = RetryConfig(initial=0.1, max=100.0, multiplier=3.0)
    assert [backoff_delay(n, policy, one) for n in (1, 2, 3)] == pytest.approx([0.1, 0.3, 0.9])
    flat = RetryConfig(initial=0.2, max=100.0, multiplier=1.0)
    assert {backoff_delay(n, flat, one) for n in range(1, 20)} == {0.2}


def test_capped_at_max() -> None:
    """The ceiling never passes policy.max."""
    assert backoff_delay(8, POLICY, one) == 60.0
    assert backoff_delay(50, POLICY, one) == 60.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """Attempt counts far past float range still give the cap instead of raising."""
    assert backoff_delay(100_000, POLICY, one) == 60.0
    assert backoff_delay(10**9, RetryConfig(initial=1.0, max=5.0, multiplier=10.0), one) == 5.0


def test_zero_rand_gives_zero() -> None:
    """Full jitter reaches all the way down to zero."""
    assert [backoff_delay(n, POLICY, zero) for n in (1, 5, 100)] == [0.0, 0.0, 0.0]


def test_jitter_scales_the_ceiling() -> None:
    """The delay is rand() times the ceiling."""
    assert backoff_delay(3, POLICY, lambda: 0.25) == 0.5
    assert backoff_delay(20, POLICY, lambda: 0.5) == 30.0


def test_first_attempt_and_below_use_initial() -> None:
    """Attempt 1 (and nonsense attempts 0 or negative) use the initial delay as ceiling."""
    assert backoff_delay(1, POLICY, one) == 0.5
    assert backoff_delay(0, POLICY, one) == 0.5
    assert backoff_delay(-3, POLICY, one) == 0.5


def test_full_jitter_bounds() -> None:
    """With real randomness every delay lies in [0, min(max, initial * multiplier**(n-1))] and spreads out."""
    rng = random.Random(1234)
    for attempt in range(1, 15):
        ceiling = min(POLICY.max, POLICY.initial * POLICY.multiplier ** (attempt - 1))
        delays = [backoff_delay(attempt, POLICY, rng.random) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.9 * ceiling  # the whole range is used, not just the bottom
        assert min(delays) < 0.1 * ceiling


def test_uses_module_random_by_default() -> None:
    """Without rand, delays are still within bounds."""
    for _ in range(100):
        assert 0.0 <= backoff_delay(4, POLICY) <= 4.0
