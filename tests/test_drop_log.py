"""Drops are logged at debug with their outcome and reason, at most DROP_LOG_RATE lines a second."""

from __future__ import annotations

import logging

import pytest

from relay.metrics import Metrics
from relay.outcomes import DROP_LOG_RATE, Outcome, Outcomes, Reason, _DropLog


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "relay.outcomes" and r.getMessage() == "items dropped"]


def test_a_flood_is_cut_to_the_rate_and_the_rest_counted(caplog: pytest.LogCaptureFixture) -> None:
    """100 drops in one second give DROP_LOG_RATE lines; the next second's first line says how many weren't."""
    now = [100.2]
    drops = _DropLog(lambda: now[0])
    with caplog.at_level(logging.DEBUG, logger="relay.outcomes"):
        for _ in range(100):
            drops.write(Outcome.FILTERED, "filter:localhost", "error", 1, None)
        assert len(_lines(caplog)) == DROP_LOG_RATE
        now[0] = 101.0
        drops.write(Outcome.RATE_LIMITED, "over_quota", "log_item", 30, None)
    last = _lines(caplog)[-1]
    fields = last.__dict__.get("fields") or last.__dict__
    text = str(fields)
    assert "over_quota" in text and "log_item" in text and str(100 - DROP_LOG_RATE) in text


def test_outcomes_log_drops_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """A drop is logged at debug with outcome, reason, category and quantity; forwarded items and info level
    log nothing."""
    outcomes = Outcomes(Metrics())
    with caplog.at_level(logging.INFO, logger="relay.outcomes"):
        outcomes.record(Outcome.DROPPED, Reason.QUEUE_OVERFLOW, ["error"])
    assert _lines(caplog) == []
    with caplog.at_level(logging.DEBUG, logger="relay.outcomes"):
        outcomes.record(Outcome.FORWARDED, Reason.NONE, ["error"])
        outcomes.record(Outcome.DROPPED, Reason.QUEUE_OVERFLOW, ["error", "error"])
    (line,) = _lines(caplog)
    assert line.levelno == logging.DEBUG
    assert "queue_overflow" in str(line.__dict__) and "'quantity': 2" in str(line.__dict__)
