"""Prometheus metrics, on a registry owned by each relay instance."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_Metric = TypeVar("_Metric", bound=MetricWrapperBase)


class Children(Generic[_Metric]):
    """A labelled metric's children, each looked up once: `labels()` validates and locks on every call,
    which the hot path would pay several times per request. Holds no more children than the metric does."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _Metric) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], _Metric] = {}

    def __call__(self, *values: str) -> _Metric:
        """The child for these label values (what `metric.labels(*values)` returns)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """Every metric the relay exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "relay_requests_total",
            "Ingest and admin HTTP requests, by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "relay_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint and status.",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.items_received = Counter(
            "relay_items_received_total",
            "Envelope items accepted for processing, by data category.",
            ["category"],
            registry=r,
        )
        self.outcomes = Counter(
            "relay_outcomes_total",
            "Final outcome of every received item: forwarded, or dropped for a reason.",
            ["outcome", "reason", "category"],
            registry=r,
        )
        self.scrub_redactions = Counter(
            "relay_scrub_redactions_total",
            "Redactions by rule and action; audit-mode rules count as action audit:<action> (nothing changed).",
            ["project", "rule", "action"],
            registry=r,
        )
        self.rules_reloads = Counter(
            "relay_rules_reload_total",
            "Rule reloads (SIGHUP or a changed rule file), by result: ok, or error (the old rules stay).",
            ["result"],
            registry=r,
        )
        self.rules_loaded_at = Gauge(
            "relay_rules_loaded_timestamp_seconds",
            "When the rules in force were loaded (Unix time).",
            registry=r,
        )
        self.quota_usage = Counter(
            "relay_quota_units_total",
            "Units drawn from or refused by each configured quota (keys are never a label).",
            ["project", "quota", "result"],
            registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "relay_ratelimit_backend_errors_total",
            "Failed or slow calls to the shared quota backend, answered by the local limiter instead.",
            ["backend", "error"],
            registry=r,
        )
        self.ratelimit_backend_up = Gauge(
            "relay_ratelimit_backend_up",
            "1 while the configured quota backend answers, 0 while the local fallback decides.",
            ["backend"],
            registry=r,
        )
        self.upstream_limits_active = Gauge(
            "relay_upstream_rate_limits_active",
            "Rate limits announced by the upstream that are in force now.",
            registry=r,
        )
        self.queue_depth = Gauge("relay_queue_envelopes", "Envelopes waiting in the queue or in flight.", registry=r)
        self.queue_bytes = Gauge(
            "relay_queue_bytes", "Bytes of envelopes waiting in the queue or in flight.", registry=r
        )
        self.forward_attempts = Counter(
            "relay_forward_attempts_total",
            "Upstream send attempts, by HTTP status (or network_error, timeout).",
            ["status"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "relay_event_loop_lag_seconds",
            "How late the event loop woke a 20 ms timer: how long something held it.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.loop_lag_max = Gauge(
            "relay_event_loop_lag_max_seconds",
            "The worst event-loop lag since the previous scrape.",
            registry=r,
        )
        self.forward_duration = Histogram(
            "relay_forward_duration_seconds",
            "Time for one upstream send attempt.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_rate_limits = Counter(
            "relay_upstream_rate_limits_total",
            "Rate limits announced by the upstream, by scope.",
            ["scope"],
            registry=r,
        )
        self.spool_entries = Gauge(
            "relay_spool_entries", "Envelopes held by the spool (on disk when durable).", registry=r
        )
        self.spool_bytes = Gauge("relay_spool_bytes", "Bytes of envelopes held by the spool.", registry=r)
        self.spool_oldest_age = Gauge(
            "relay_spool_oldest_entry_age_seconds", "Age of the oldest envelope in the spool.", registry=r
        )
        self.spool_drained = Counter(
            "relay_spool_drained_total",
            "Envelopes settled and removed from the spool (its rate is the drain rate).",
            registry=r,
        )
        self.spool_corrupt = Counter(
            "relay_spool_corrupt_total",
            "Corrupt spool files found at start-up: moved aside (the log names them) and salvaged.",
            registry=r,
        )
        self.connections_refused = Counter(
            "relay_connections_refused_total",
            "Connections closed as they arrived because listen.max_connections were open.",
            registry=r,
        )
        self.upstream_outage = Gauge(
            "relay_upstream_outage",
            "1 while the upstream is considered down (probing one envelope at a time).",
            registry=r,
        )
        self.ready = Gauge(
            "relay_ready", "1 while the relay accepts traffic, 0 while starting or draining.", registry=r
        )

        # Children of the metrics counted on every request, cached.
        self.requests_by = Children(self.requests)
        self.request_duration_by = Children(self.request_duration)
        self.items_received_by = Children(self.items_received)
        self.outcomes_by = Children(self.outcomes)
        self.forward_attempts_by = Children(self.forward_attempts)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
