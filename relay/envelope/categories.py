"""Envelope item types and the data categories that rate limits and outcomes count them in."""

from __future__ import annotations

from collections.abc import Iterable

# Item type -> Sentry data category (the names used in X-Sentry-Rate-Limits and outcomes).
_CATEGORY_BY_TYPE: dict[str, str] = {
    "event": "error",
    "transaction": "transaction",
    "security": "security",
    "raw_security": "security",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "client_report": "internal",
    "check_in": "monitor",
    "log": "log_item",
    "otel_log": "log_item",
    "span": "span",
    "otel_span": "span",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "replay_event": "replay",
    "replay_recording": "replay",
    "replay_video": "replay",
    "user_report": "feedback",
    "feedback": "feedback",
    "statsd": "metric_bucket",
    "metric_buckets": "metric_bucket",
    "trace_metric": "trace_metric",
}

# Every data category name the relay knows (quotas and sampling are checked against it).
DATA_CATEGORIES: frozenset[str] = frozenset(
    {*_CATEGORY_BY_TYPE.values(), "default", "log_byte", "span_indexed", "transaction_indexed"} - {"internal"}
)

# Item types whose payload is a JSON document the relay reads (and later scrubs).
JSON_ITEM_TYPES: frozenset[str] = frozenset(
    {
        "event",
        "transaction",
        "security",
        "session",
        "sessions",
        "client_report",
        "check_in",
        "span",
        "user_report",
        "feedback",
        "replay_event",
    }
)

# Item types that may be containers: one item holding many logs, spans or metrics (`{"items": [...]}`, with
# `item_count` in the header and a `application/vnd.sentry.items.*` content type). Quotas, outcomes and
# client reports count what is inside.
CONTAINER_TYPES: frozenset[str] = frozenset({"log", "otel_log", "span", "otel_span", "trace_metric"})
CONTAINER_CONTENT_TYPE = "application/vnd.sentry.items."
# The most inner items one container is counted as (an SDK batches at most a few hundred).
MAX_CONTAINER_ITEMS = 10_000

# Item types that carry the envelope's event, whose id the ingest endpoint answers with.
EVENT_ITEM_TYPES: frozenset[str] = frozenset({"event", "transaction", "security", "raw_security", "feedback"})


# Item types that belong to an envelope's event or transaction: when it is dropped (filtered, sampled
# out, rate limited), they go with it, as Sentry's envelope limiter does.
_DEPENDENT_TYPES = {
    "error": frozenset({"attachment", "user_report"}),
    "default": frozenset({"attachment", "user_report"}),
    "security": frozenset({"attachment", "user_report"}),
    "transaction": frozenset({"attachment", "user_report", "profile", "profile_chunk"}),
}


def dependent_types(categories: Iterable[str]) -> frozenset[str]:
    """The item types that depend on items of these categories."""
    return frozenset().union(*(_DEPENDENT_TYPES.get(category, frozenset()) for category in categories))


def category_of(item_type: str) -> str:
    """The data category an item of this type is counted in (`default` when unknown)."""
    return _CATEGORY_BY_TYPE.get(item_type, "default")
