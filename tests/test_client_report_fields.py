"""The relay's client reports use the fields Sentry's Relay fills, with the reasons Sentry's stats show."""

from __future__ import annotations

import pytest

from relay.client_reports import report_field
from relay.outcomes import Outcome, Reason


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        (Outcome.RATE_LIMITED, "over_quota", ("rate_limited_events", "over_quota")),  # the quota's reason code
        (Outcome.RATE_LIMITED, Reason.UPSTREAM_RATE_LIMITED, ("rate_limited_events", "upstream_rate_limited")),
        (Outcome.RATE_LIMITED, Reason.UPSTREAM_LIMITED_ON_SEND, None),  # the upstream's own 429: counted there
        (Outcome.FILTERED, "filter:browser_extensions", ("filtered_events", "browser-extensions")),
        (Outcome.FILTERED, "filter:releases", ("filtered_events", "release-version")),
        (Outcome.FILTERED, "filter:web_crawlers", ("filtered_events", "web-crawlers")),
        (Outcome.FILTERED, "filter:localhost", ("filtered_events", "localhost")),
        (Outcome.FILTERED, Reason.UNSCANNABLE, ("discarded_events", "event_processor")),  # only the relay knows
        (Outcome.FILTERED_SAMPLING, "drop-staging", ("filtered_sampling_events", "drop-staging")),
        (Outcome.INVALID, Reason.SCRUB_FAILED, ("discarded_events", "invalid")),
        (Outcome.INVALID, Reason.UPSTREAM_REJECTED, None),
        (Outcome.DROPPED, Reason.QUEUE_OVERFLOW, ("discarded_events", "queue_overflow")),
        (Outcome.DROPPED, Reason.EXPIRED, ("discarded_events", "network_error")),
        (Outcome.FORWARDED, Reason.NONE, None),
    ],
)
def test_outcome_to_report_field(outcome: Outcome, reason: str, expected: tuple[str, str] | None) -> None:
    """Each outcome lands in the field and reason Relay would use, or is left out when the upstream counted it."""
    assert report_field(outcome, str(reason)) == expected
