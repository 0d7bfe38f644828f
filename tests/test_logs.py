"""Log lines never carry the user part of a URL (an upstream's credentials, a DSN's key)."""

from __future__ import annotations

import logging

import pytest

from relay.logs import log_event, log_failure, masked


def test_masked_hides_the_user_part_of_urls() -> None:
    """`https://user:pw@host` and a DSN lose their user part; other text is unchanged."""
    assert masked("upstream https://app:s3cret@sentry.example.com/api/1") == (
        "upstream https://[Filtered]@sentry.example.com/api/1"
    )
    assert masked("http://0123abcd@relay:3000/42 and a@b.c") == "http://[Filtered]@relay:3000/42 and a@b.c"
    assert masked("no url here") == "no url here"


def test_log_event_masks_url_fields(caplog: pytest.LogCaptureFixture) -> None:
    """Structured fields that hold a URL with credentials are logged masked."""
    logger = logging.getLogger("relay.test")
    with caplog.at_level(logging.INFO, logger="relay.test"):
        log_event(logger, logging.INFO, "relay ready", upstream="https://u:p@host/x", error="GET https://k@h/ failed")
    record = caplog.records[-1]
    assert record.upstream == "https://[Filtered]@host/x"  # type: ignore[attr-defined]
    assert record.error == "GET https://[Filtered]@h/ failed"  # type: ignore[attr-defined]


def test_log_failure_names_the_exception_not_its_message(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception is logged by type and place: its message may quote the payload."""
    logger = logging.getLogger("relay.test")
    try:
        raise KeyError("alice@example.com")
    except KeyError as exc:
        with caplog.at_level(logging.INFO, logger="relay.test"):
            log_failure(logger, "stage failed", exc, stage="scrub")
    record = caplog.records[-1]
    assert record.error == "KeyError" and record.stage == "scrub"  # type: ignore[attr-defined]
    assert "test_logs.py:" in record.where  # type: ignore[attr-defined]
    assert "alice" not in caplog.text and record.exc_info is None
