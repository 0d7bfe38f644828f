"""The ceiling on announced limits: absurd limits are cut to it, still honoured, and logged once per episode."""

from __future__ import annotations

import logging

import pytest

from relay.ratelimit import LimitCeiling, RateLimitCache, parse_rate_limits

from ..support import FakeClock

URL = "https://o1.ingest.sentry.io"
KEY = "a" * 32


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ceiling's warnings so far."""
    return [r for r in caplog.records if r.levelno == logging.WARNING and "max_rate_limit" in r.getMessage()]


def test_limits_within_the_ceiling_are_untouched(caplog: pytest.LogCaptureFixture) -> None:
    """Limits up to the ceiling pass as they are, and nothing is logged."""
    limits = parse_rate_limits("60:error:key, 3600::organization")
    assert LimitCeiling(3600, FakeClock()).clamp(URL, "1", KEY, limits) is limits
    assert warnings_of(caplog) == []


def test_longer_limits_are_cut_to_the_ceiling() -> None:
    """A year-long limit becomes an hour; its categories, scope and reason stay."""
    limits = parse_rate_limits("31536000:error;transaction:organization:quota, 10:attachment:key")
    clamped = LimitCeiling(3600, FakeClock()).clamp(URL, "1", KEY, limits)
    assert [(c.retry_after, c.categories, c.scope, c.reason_code) for c in clamped] == [
        (3600, frozenset({"error", "transaction"}), "organization", "quota"),
        (10.0, frozenset({"attachment"}), "key", None),
    ]


def test_a_clamped_limit_is_honoured_for_the_ceiling_and_then_lapses() -> None:
    """The cache keeps the cut limit for the ceiling's length, not the announced one."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY, LimitCeiling(3600, clock).clamp(URL, "1", KEY, parse_rate_limits("1e308::key")))
    hit = cache.check(URL, "1", KEY, "error")
    assert hit is not None and hit[1] == 3600
    assert hit[0].render(hit[1]) == "3600::key"
    clock.advance(3599)
    assert cache.check(URL, "1", KEY, "error") is not None
    clock.advance(1)
    assert cache.check(URL, "1", KEY, "error") is None


def test_logged_once_per_episode_with_the_announced_value(caplog: pytest.LogCaptureFixture) -> None:
    """Repeated announcements while the cut limit lasts log nothing more; once it lapsed, a new one logs again."""
    clock = FakeClock()
    ceiling = LimitCeiling(60, clock)
    with caplog.at_level(logging.DEBUG, logger="relay.forward"):
        for _ in range(5):
            ceiling.clamp(URL, "1", KEY, parse_rate_limits("31536000:transaction:project"))
            clock.advance(30)  # each announcement extends the episode by the ceiling
        assert len(warnings_of(caplog)) == 1
        record = warnings_of(caplog)[0]
        assert (record.__dict__["announced"], record.__dict__["max_rate_limit"]) == (31536000.0, 60)
        assert (record.__dict__["scope"], record.__dict__["categories"], record.__dict__["project"]) == (
            "project",
            "transaction",
            "1",
        )
        ceiling.clamp(URL, "1", KEY, parse_rate_limits("31536000:error:project"))  # other categories: own episode
        ceiling.clamp(URL, "2", KEY, parse_rate_limits("31536000:transaction:project"))  # another project
        assert len(warnings_of(caplog)) == 3
        clock.advance(61)
        ceiling.clamp(URL, "1", KEY, parse_rate_limits("31536000:transaction:project"))
        assert len(warnings_of(caplog)) == 4
