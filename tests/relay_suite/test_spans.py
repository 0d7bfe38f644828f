"""Port of getsentry/relay `tests/integration/test_spans.py` as black-box tests of this relay.

Relay source read at commit 16c588054c6c7c4e9c3647aa94c37dc6497ebe9b.

Every test there runs a processing Relay and reads spans, span metrics or outcomes from Kafka: span extraction,
metrics extraction, performance scores and the indexed/total span quotas that keep them consistent. None is a
behaviour of a scrubbing proxy; the span items SDKs send are covered by the scrubbing and container tests.
"""

from __future__ import annotations

import pytest


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_extraction() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_extraction_with_sampling() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="performance scores and transaction metrics are extracted by Sentry's Relay")
def test_duplicate_performance_score() -> None:
    """Skipped: performance scores and transaction metrics are extracted by Sentry's Relay."""


@pytest.mark.skip(reason="OTel span conversion and span metrics are Sentry's processing (Kafka); README: no OTLP")
def test_span_ingestion() -> None:
    """Skipped: OTel span conversion and span metrics are Sentry's processing (Kafka); README: no OTLP."""


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_extraction_with_metrics_summary() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="transactions extracted from segment spans are Sentry's processing")
def test_extracted_transaction_gets_normalized() -> None:
    """Skipped: transactions extracted from segment spans are Sentry's processing."""


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_no_extraction_with_metrics_summary() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_extraction_with_ddm_missing_values() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="span timestamp validation is Sentry's processing (Kafka)")
def test_span_reject_invalid_timestamps() -> None:
    """Skipped: span timestamp validation is Sentry's processing (Kafka)."""


@pytest.mark.skip(reason="performance scores and transaction metrics are extracted by Sentry's Relay")
def test_span_ingestion_with_performance_scores() -> None:
    """Skipped: performance scores and transaction metrics are extracted by Sentry's Relay."""


@pytest.mark.skip(reason="indexed-span quotas kept consistent with span metrics: processing only")
def test_rate_limit_indexed_consistent() -> None:
    """Skipped: indexed-span quotas kept consistent with span metrics: processing only."""


@pytest.mark.skip(reason="indexed-span quotas kept consistent with span metrics: processing only")
def test_rate_limit_indexed_consistent_extracted() -> None:
    """Skipped: indexed-span quotas kept consistent with span metrics: processing only."""


@pytest.mark.skip(reason="indexed-span quotas kept consistent with span metrics: processing only")
def test_rate_limit_metrics_consistent() -> None:
    """Skipped: indexed-span quotas kept consistent with span metrics: processing only."""


@pytest.mark.skip(reason="span extraction from transactions and span metrics are Sentry's processing (Kafka)")
def test_span_extraction_with_tags() -> None:
    """Skipped: span extraction from transactions and span metrics are Sentry's processing (Kafka)."""
