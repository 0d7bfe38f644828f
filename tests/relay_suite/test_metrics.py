"""Port of getsentry/relay `tests/integration/test_metrics.py` as black-box tests of this relay.

Relay source read at commit 75d0f7bde7f0febad02343410d69cb337f53b40a.

Every test there is about Relay's metrics: the statsd `metrics` item aggregated into `metric_buckets`, session and
transaction metrics extraction, and the aggregator's flush at shutdown.
"""

from __future__ import annotations

import pytest


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_metrics() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_metrics_backdated() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_metrics_with_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_metrics_full() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_session_metrics_non_processing() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_session_metrics_extracted_only_once() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_session_metrics_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_transaction_metrics() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_transaction_metrics_extraction_external_relays() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_transaction_metrics_extraction_processing_relays() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy")
def test_transaction_metrics_not_extracted_on_unsupported_version() -> None:
    """Skipped: metrics extraction and aggregation happen in Sentry's Relay, not in a scrubbing proxy."""


@pytest.mark.skip(reason="flushing the metrics aggregator at shutdown: this relay has no aggregator")
def test_graceful_shutdown() -> None:
    """Skipped: flushing the metrics aggregator at shutdown: this relay has no aggregator."""
