"""Inbound filters and fingerprint rules with the real sentry-python SDK: noise dropped and reported, groups set."""

from __future__ import annotations

from typing import Any

import sentry_sdk
import sentry_sdk.traces

from ..support import outcome_totals
from .test_sentry_sdk import items_of, sdk, wait_until
from .test_volume_sdk import capture_error, reported, settled, volume_relay, wait_forwarded

OPTIONS = """    rules: [secrets, pii]
    filters:
      exception_types: [KeyboardInterrupt, BrokenPipeError]
      messages: ["*connection reset by peer*"]
      transactions: ["/healthz", "*/ping"]
      localhost: true
    fingerprints:
      - match: {error.type: DatabaseError}
        fingerprint: [database-error]
      - match: {error.value: "Connection timeout*"}
        fingerprint: [connection-timeout]"""


class DatabaseError(Exception):
    """Stands in for a driver's database error."""


def from_localhost(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """What a web framework integration records for a request served on a developer's machine."""
    event["request"] = {"url": "http://localhost:8000/cart", "method": "GET", "headers": {"Host": "localhost:8000"}}
    return event


def test_filters_drop_noise_and_client_reports_count_it() -> None:
    """A health-check transaction, a KeyboardInterrupt and a localhost event are dropped and reported upstream."""
    with volume_relay(OPTIONS, "outcomes: {client_reports: true, interval: 200ms}") as relay:
        assert relay.state is not None
        state = relay.state
        with sdk(relay) as (client, _recorder):
            with sentry_sdk.start_transaction(name="/healthz", op="http.server"):
                pass
            with sentry_sdk.start_transaction(name="/api/orders", op="http.server"):
                pass
            capture_error(KeyboardInterrupt())
            capture_error(ConnectionResetError("[Errno 104] Connection reset by peer"))
            with sentry_sdk.new_scope() as scope:
                scope.add_event_processor(from_localhost)
                capture_error(ValueError("only on my laptop"))
            capture_error(DatabaseError("relation users does not exist"))
            capture_error(TimeoutError("Connection timeout after 5000ms to db-1 for alice@example.com"))
            capture_error(ValueError("a real bug"))
            client.flush(timeout=10)
        wait_forwarded(state, error=3, transaction=1)
        totals = outcome_totals(state)
        assert totals.get(("filtered", "filter:transactions", "transaction")) == 1
        assert totals.get(("filtered", "filter:exception_types", "error")) == 1
        assert totals.get(("filtered", "filter:messages", "error")) == 1
        assert totals.get(("filtered", "filter:localhost", "error")) == 1
        # Reported as Relay reports them: `filtered_events` under Sentry's filter keys.
        expected = {
            ("filtered_events", "filtered-transaction", "transaction"): 1,
            ("filtered_events", "error-message", "error"): 2,
            ("filtered_events", "localhost", "error"): 1,
        }
        assert settled(lambda: reported(relay.upstream, "relay"), expected) == expected

        transactions = [item.json() for item in items_of(relay, "transaction")]
        assert [t["transaction"] for t in transactions] == ["/api/orders"]
        events = {e["exception"]["values"][-1]["type"]: e for e in (i.json() for i in items_of(relay, "event"))}
        assert set(events) == {"DatabaseError", "TimeoutError", "ValueError"}
        assert events["DatabaseError"]["fingerprint"] == ["database-error"]
        # The rule matched the message before scrubbing replaced the email in it.
        assert events["TimeoutError"]["fingerprint"] == ["connection-timeout"]
        assert "alice@example.com" not in str(events["TimeoutError"])
        assert "fingerprint" not in events["ValueError"] or events["ValueError"]["fingerprint"] == ["{{ default }}"]


def test_sdk_fingerprint_is_kept() -> None:
    """A fingerprint the application set itself wins over the central rules."""
    with volume_relay(OPTIONS) as relay, sdk(relay) as (client, _recorder):
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = ["my-own-grouping"]
            capture_error(DatabaseError("deadlock detected"))
        client.flush(timeout=10)
        relay.wait_for(1)
        [event] = [item.json() for item in items_of(relay, "event")]
        assert event["fingerprint"] == ["my-own-grouping"]


def test_streamed_spans_are_filtered_like_their_transaction() -> None:
    """With span streaming (sentry-python's `trace_lifecycle="stream"`, JS v11's default) no transaction is sent:
    a health check's spans are dropped by `filters.transactions`, and counted per span; other spans pass."""
    with volume_relay(OPTIONS) as relay:
        assert relay.state is not None
        state = relay.state
        with sdk(relay, trace_lifecycle="stream") as (client, _recorder):
            with sentry_sdk.traces.start_span(name="/healthz"), sentry_sdk.traces.start_span(name="db.ping"):
                pass
            with sentry_sdk.traces.start_span(name="/api/orders"), sentry_sdk.traces.start_span(name="db.query"):
                pass
            client.flush(timeout=10)
        wait_until(lambda: outcome_totals(state).get(("forwarded", "none", "span"), 0) >= 2, what="the kept spans")
        totals = outcome_totals(state)
        assert totals.get(("filtered", "filter:transactions", "span")) == 2
        assert totals.get(("forwarded", "none", "span")) == 2
        names = {span["name"] for item in items_of(relay, "span") for span in item.json()["items"]}
        assert names == {"/api/orders", "db.query"}
