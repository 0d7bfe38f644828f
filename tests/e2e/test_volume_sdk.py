"""Quotas, sampling and client reports with the real sentry-python SDK: SDK -> relay -> fake upstream over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk

from relay.envelope import Envelope
from relay.ingest import RelayState

from ..support import (
    KEY,
    OTHER_KEY,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    BackgroundRelay,
    FakeUpstream,
    Received,
    outcome_totals,
)
from .test_sentry_sdk import ProjectsYaml, SdkRecorder, assert_forwarded_clean, items_of, sdk, wait_until


@contextmanager
def volume_relay(options: str, extra: str = "") -> Iterator[BackgroundRelay]:
    """A background relay whose project 42 has extra YAML options (indented four spaces), plus top-level `extra`."""
    projects = ProjectsYaml(options, keys=(KEY, OTHER_KEY))
    relay = BackgroundRelay(extra, projects=projects)
    projects.upstream = relay.upstream
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


def left_in_window(window: int) -> float:
    """Seconds left in the current epoch-aligned quota window."""
    return window - time.time() % window


def clear_of_window_edge(window: int, margin: float = 15.0) -> None:
    """Quota windows are aligned to the epoch: start a test well inside one, so its counts can't reset midway."""
    left = left_in_window(window)
    if left < margin:
        time.sleep(left + 0.1)


def other_key_dsn(relay: BackgroundRelay) -> str:
    """The DSN of project 42's second key."""
    return relay.dsn.replace(KEY, OTHER_KEY)


def capture_error(exc: BaseException, **scope_kwargs: Any) -> str:
    """Raise and capture `exc` (scope kwargs such as `level` apply to this event only); return its event id."""
    try:
        raise exc
    except BaseException:
        event_id = sentry_sdk.capture_exception(**scope_kwargs)
    assert event_id is not None
    return event_id


def record_retry_after(transport: Any) -> list[str | None]:
    """Record the Retry-After header of every response the SDK transport handles."""
    seen: list[str | None] = []
    handle_response = transport._handle_response

    def recording(response: Any, envelope: Any) -> None:
        seen.append(transport._get_header_value(response, "retry-after"))
        handle_response(response=response, envelope=envelope)

    transport._handle_response = recording
    return seen


def parse_limits(header: str | None) -> list[tuple[int, list[str], str, str | None]]:
    """An X-Sentry-Rate-Limits value as [(seconds, categories, scope, reason)]."""
    assert header, "expected an X-Sentry-Rate-Limits header"
    limits = []
    for entry in header.split(","):
        fields = entry.strip().split(":")
        limits.append(
            (int(fields[0]), fields[1].split(";"), fields[2], fields[3] if len(fields) > 3 and fields[3] else None)
        )
    return limits


def item_types(envelope: Envelope) -> list[str]:
    """The item types of an envelope, in order."""
    return [item.type for item in envelope.items]


def event_envelopes(relay: BackgroundRelay) -> list[Received]:
    """Upstream requests that carry an event (not the client reports in between)."""
    return [r for r in list(relay.upstream.received) if "event" in item_types(r.envelope)]


def sdk_exchanges(recorder: SdkRecorder) -> list[tuple[Envelope, int, str | None]]:
    """(envelope sent, status answered, X-Sentry-Rate-Limits answered) for every request, in order."""
    with recorder.lock:
        assert len(recorder.requests) == len(recorder.responses)
        return [
            (request.envelope, status, limits)
            for request, (status, limits) in zip(recorder.requests, recorder.responses, strict=True)
            if request.envelope is not None
        ]


def settled(read: Callable[[], Any], expected: Any, timeout: float = 10.0) -> Any:
    """Poll `read()` until it equals `expected` or the time is up; return the last value (for the caller to assert)."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def wait_forwarded(state: RelayState, **expected: int) -> None:
    """Wait for relay_outcomes_total{outcome="forwarded"} to reach `expected` per category.

    The upstream holds an envelope a moment before the relay has its answer and records the outcome.
    """

    def forwarded() -> dict[str, int]:
        totals = outcome_totals(state).items()
        return {
            category: int(v) for (outcome, _, category), v in totals if outcome == "forwarded" and category in expected
        }

    assert settled(forwarded, expected) == expected


def client_name(rec: Received) -> str:
    """The `sentry_client` an upstream request's X-Sentry-Auth names."""
    return rec.headers["X-Sentry-Auth"].split("sentry_client=")[1].split(",")[0].strip()


REPORT_FIELDS = ("discarded_events", "rate_limited_events", "filtered_events", "filtered_sampling_events")


def reported(upstream: FakeUpstream, client_prefix: str) -> Counter[tuple[str, str, str]]:
    """Sum of client report quantities by (field, reason, category) over reports sent by one kind of client."""
    totals: Counter[tuple[str, str, str]] = Counter()
    for rec in list(upstream.received):
        if not client_name(rec).startswith(client_prefix):
            continue
        for item in rec.envelope.items:
            if item.type == "client_report":
                report = item.json()
                for field in REPORT_FIELDS:
                    for entry in report.get(field, ()):
                        totals[(field, entry["reason"], entry["category"])] += entry["quantity"]
    return totals


def discarded(upstream: FakeUpstream, client_prefix: str) -> Counter[tuple[str, str]]:
    """Sum of `discarded_events` quantities by (reason, category) over client reports sent by one kind of client."""
    return Counter(
        {(reason, category): n for (field, reason, category), n in reported(upstream, client_prefix).items()
         if field == "discarded_events"}
    )  # fmt: skip


def test_sdk_backs_off_after_a_quota_429() -> None:
    """Over an error quota the SDK gets one 429 naming error/key, stops sending errors, and reports what it skipped."""
    clear_of_window_edge(3600)
    quota = "    quotas:\n      - {id: errors, categories: [error], scope: key, limit: 3, window: 1h}"
    with volume_relay(quota) as relay:
        assert relay.state is not None
        state = relay.state
        with sdk(relay, send_client_reports=True) as (client, recorder):
            transport = client.transport
            retry_afters = record_retry_after(transport)
            event_ids = []
            for n in range(10):
                event_ids.append(capture_error(RuntimeError(f"failure {n}")))
                client.flush(timeout=10)

            exchanges = sdk_exchanges(recorder)
            errors = [(env, status, limits) for env, status, limits in exchanges if "event" in item_types(env)]
            assert len(errors) == 4, "the SDK kept sending errors after the 429"
            assert [env.event_id for env, _, _ in errors] == event_ids[:4]
            assert [status for _, status, _ in errors] == [200, 200, 200, 429]
            assert [limits for _, _, limits in errors[:3]] == [None, None, None]
            ((seconds, categories, scope, reason),) = parse_limits(errors[3][2])
            assert (categories, scope, reason) == (["error"], "key", "over_quota")
            assert abs(seconds - left_in_window(3600)) <= 2, "the wait is what is left of the epoch-aligned hour"
            (retry_after,) = [
                r for r, (status, _) in zip(retry_afters, recorder.responses, strict=True) if status == 429
            ]
            assert retry_after is not None and abs(int(retry_after) - seconds) <= 1
            assert transport._check_disabled("error")
            assert not transport._check_disabled("transaction")
            # Everything the SDK sent after the 429 was its own client reports, all accepted.
            later = exchanges[exchanges.index(errors[3]) + 1 :]
            assert later and all(item_types(env) == ["client_report"] and status == 200 for env, status, _ in later)

            # The limit is per category: a transaction still goes all the way.
            with (
                sentry_sdk.start_transaction(name="after-the-limit", op="task") as transaction,
                sentry_sdk.start_span(op="work", name="still flowing"),
            ):
                pass
            client.flush(timeout=10)
            wait_until(lambda: len(items_of(relay, "transaction")) == 1, what="the transaction upstream")
            # The SDK's client reports ride their own envelopes; the last one goes out on close.

        # sentry-python records each event it held back as `ratelimit_backoff` (the six after the 429) and does
        # not count the event the relay answered with 429: the relay reports that one itself.
        sdk_reports = settled(lambda: discarded(relay.upstream, "sentry.python"), {("ratelimit_backoff", "error"): 6})
        assert sdk_reports == {("ratelimit_backoff", "error"): 6}
        upstream_errors = event_envelopes(relay)
        assert [r.envelope.event_id for r in upstream_errors] == event_ids[:3]
        for rec in upstream_errors:
            assert_forwarded_clean(rec, relay)
        (tx,) = items_of(relay, "transaction")
        assert tx.json()["contexts"]["trace"]["trace_id"] == transaction.trace_id

        wait_forwarded(state, error=3, transaction=1)
        totals = outcome_totals(state)
        assert totals.get(("rate_limited", "over_quota", "error")) == 1
        assert not [k for k, v in totals.items() if v and k[0] not in ("forwarded", "rate_limited")]

    # The relay's own report (flushed at shutdown) covers the one event it refused.
    assert reported(relay.upstream, "relay") == {("rate_limited_events", "over_quota", "error"): 1}


def test_attachment_quota_strips_the_attachment_and_keeps_the_event() -> None:
    """An event with an attachment under an attachment-only quota of 0: the event goes on, the attachment is refused."""
    clear_of_window_edge(3600, margin=5)
    quota = "    quotas:\n      - {id: attachments, categories: [attachment], limit: 0, window: 1h}"
    with volume_relay(quota) as relay, sdk(relay) as (client, recorder):
        assert relay.state is not None
        state = relay.state
        scope = sentry_sdk.get_isolation_scope()
        notes = b"line one\nline two\n"
        scope.add_attachment(bytes=notes, filename="notes.txt", content_type="text/plain")
        first = capture_error(ValueError("with an attachment"))
        client.flush(timeout=10)
        wait_until(lambda: len(items_of(relay, "event")) == 1, what="the event upstream")

        ((sent, status, limits),) = sdk_exchanges(recorder)
        assert item_types(sent) == ["event", "attachment"]
        assert status == 200, "the event was accepted, so the answer is not a 429"
        ((seconds, categories, scope_name, reason),) = parse_limits(limits)
        assert (categories, scope_name, reason) == (["attachment"], "project", "over_quota")
        assert abs(seconds - left_in_window(3600)) <= 2
        (rec,) = event_envelopes(relay)
        assert rec.envelope.event_id == first
        assert item_types(rec.envelope) == ["event"]
        assert rec.envelope.items[0].json()["exception"]["values"][-1]["value"] == "with an attachment"
        assert_forwarded_clean(rec, relay)
        wait_forwarded(state, error=1)
        assert outcome_totals(state).get(("rate_limited", "over_quota", "attachment")) == 1

        # The SDK understood the header: it now leaves attachments out itself and still sends events.
        assert client.transport._check_disabled("attachment")
        assert not client.transport._check_disabled("error")
        second = capture_error(ValueError("attachment held back by the SDK"))
        client.flush(timeout=10)
        wait_until(lambda: len(items_of(relay, "event")) == 2, what="the second event upstream")
        sent_again, status_again, _ = sdk_exchanges(recorder)[1]
        assert (item_types(sent_again), sent_again.event_id, status_again) == (["event"], second, 200)
        assert outcome_totals(state).get(("rate_limited", "over_quota", "attachment")) == 1


def test_event_over_quota_takes_its_attachment_with_it() -> None:
    """An error refused by its quota takes its attachment along (as Sentry does): nothing goes upstream, 429."""
    quota = "    quotas:\n      - {id: errors, categories: [error], limit: 0, window: 1h, reason_code: no_errors}"
    with volume_relay(quota) as relay, sdk(relay) as (client, recorder):
        assert relay.state is not None
        state = relay.state
        sentry_sdk.get_isolation_scope().add_attachment(bytes=b"context for the error\n", filename="context.txt")
        capture_error(ValueError("over the error quota"))
        client.flush(timeout=10)

        ((sent, status, limits),) = sdk_exchanges(recorder)
        assert item_types(sent) == ["event", "attachment"]
        totals = outcome_totals(state)
        assert totals.get(("rate_limited", "no_errors", "error")) == 1
        assert totals.get(("rate_limited", "no_errors", "attachment")) == 1, (
            f"the attachment outlived its rate-limited event: {totals}"
        )
        assert status == 429, "nothing was left to forward"
        assert (["error"], "project", "no_errors") in [limit[1:] for limit in parse_limits(limits)]
    assert items_of(relay, "attachment") == [], "an orphaned attachment was forwarded upstream"


def test_relay_client_report_counts_attachments_in_bytes() -> None:
    """Client reports count the `attachment` category in bytes (as SDKs and Sentry do), not in items."""
    quota = "    quotas:\n      - {id: attachments, categories: [attachment], limit: 0, window: 1h}"
    first, second = b"x" * 1000, b"y" * 234
    with (
        volume_relay(quota, "outcomes: {client_reports: true, interval: 200ms}") as relay,
        sdk(relay) as (client, _recorder),
    ):
        scope = sentry_sdk.get_isolation_scope()
        scope.add_attachment(bytes=first, filename="first.bin")
        scope.add_attachment(bytes=second, filename="second.bin")
        capture_error(ValueError("two attachments over quota"))
        client.flush(timeout=10)
        wait_until(lambda: len(items_of(relay, "event")) == 1, what="the event upstream")
        expected = {("rate_limited_events", "over_quota", "attachment"): len(first) + len(second)}
        assert settled(lambda: reported(relay.upstream, "relay"), expected, timeout=3) == expected


def test_relay_client_reports_count_sampling_and_quota_discards() -> None:
    """The relay's own client reports upstream sum to exactly its sampled-out and rate-limited items."""
    clear_of_window_edge(3600)
    options = """    sampling:
      rules:
        - {id: drop-staging, match: {environment: staging}, rate: 0.0}
    quotas:
      - {id: errors, categories: [error], limit: 2, window: 1h}"""
    with volume_relay(options, "outcomes: {client_reports: true, interval: 200ms}") as relay:
        assert relay.state is not None
        state = relay.state
        with sdk(relay, environment="staging") as (client, recorder):
            for n in range(5):
                capture_error(RuntimeError(f"staging failure {n}"))
            client.flush(timeout=10)
            assert recorder.responses == [(200, None)] * 5, "sampled-out events are answered 200, no limits"
        # Two services share the project quota of 2: the first sends 3 (the third is refused with a 429, after
        # which its SDK backs off), the second sends 1 and is refused as well.
        with sdk(relay, environment="production") as (client, recorder):
            for n in range(3):
                capture_error(RuntimeError(f"production failure {n}"))
                client.flush(timeout=10)
            assert [status for status, _ in recorder.responses] == [200, 200, 429]
        with sdk(relay, environment="production", dsn=other_key_dsn(relay)) as (client, recorder):
            capture_error(RuntimeError("production failure from the other service"))
            client.flush(timeout=10)
            ((status, limits),) = recorder.responses
            assert status == 429
            assert parse_limits(limits)[0][1:] == (["error"], "project", "over_quota")

        # As Relay reports them: sampled out under the rule's id, rate limited under the quota's reason code.
        expected = {
            ("filtered_sampling_events", "drop-staging", "error"): 5,
            ("rate_limited_events", "over_quota", "error"): 2,
        }
        assert settled(lambda: reported(relay.upstream, "relay"), expected) == expected
        wait_forwarded(state, error=2)
        totals = outcome_totals(state)
        assert totals.get(("filtered_sampling", "drop-staging", "error")) == 5
        assert totals.get(("rate_limited", "over_quota", "error")) == 2
        total = sum(expected.values())
        assert total == sum(v for (outcome, _, _), v in totals.items() if outcome != "forwarded")

    # After shutdown (which flushes the last counts) nothing was reported twice, and nothing else.
    assert reported(relay.upstream, "relay") == expected
    reports = [r for r in relay.upstream.received if "client_report" in item_types(r.envelope)]
    assert reports
    upstream_dsn = f"{relay.upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    for rec in reports:
        assert client_name(rec) == "relay", "the SDKs had client reports off: every report is the relay's"
        assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
        assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
        assert set(item_types(rec.envelope)) == {"client_report"}
        assert "sent_at" in rec.envelope.headers
        assert rec.envelope.headers["dsn"] == upstream_dsn
        for item in rec.envelope.items:
            assert isinstance(item.json()["timestamp"], str)
    assert len(items_of(relay, "event")) == 2
    assert all(item.json()["environment"] == "production" for item in items_of(relay, "event"))


def low_56_bits(hex_id: str) -> float:
    """The number in [0, 1) the relay samples an event by: the low 56 bits of its id."""
    return int(hex_id[-14:], 16) / (1 << 56)


def test_sampling_rules_first_match_wins() -> None:
    """Ordered rules: a fatal ConnectionError is kept by the first rule, others fall to `conn` or the 0.0 default."""
    options = """    sampling:
      error: 0.0
      rules:
        - {id: keep-fatal, match: {level: fatal}, rate: 1.0}
        - {id: conn, match: {exception_type: ConnectionError}, rate: 0.0}
        - {id: staging-half, match: {environment: staging}, rate: 0.5}"""
    with volume_relay(options) as relay:
        assert relay.state is not None
        state = relay.state
        kept: set[str] = set()
        by_reason: Counter[str] = Counter()
        with sdk(relay, environment="production") as (client, recorder):
            kept.add(capture_error(ConnectionError("fatal and a connection error"), level="fatal"))
            kept.add(sentry_sdk.capture_message("fatal message", level="fatal"))
            for n in range(3):
                capture_error(ConnectionError(f"refused {n}"))
            try:
                try:
                    raise ConnectionError("the cause")
                except ConnectionError as cause:
                    raise ValueError("wrapped") from cause
            except ValueError:
                sentry_sdk.capture_exception()  # the chain holds a ConnectionError: `conn` applies
            by_reason["conn"] += 4
            for n in range(4):
                capture_error(RuntimeError(f"plain {n}"))
            sentry_sdk.capture_message("an info message", level="info")
            sentry_sdk.capture_message("an error message", level="error")
            by_reason["category:error"] += 6
            client.flush(timeout=10)
        staging_ids = []
        with sdk(relay, environment="staging") as (client, recorder):
            kept.add(capture_error(RuntimeError("fatal in staging"), level="fatal"))
            for n in range(2):
                capture_error(ConnectionError(f"staging refused {n}"))  # `conn` comes before `staging-half`
            by_reason["conn"] += 2
            for n in range(40):
                staging_ids.append(capture_error(RuntimeError(f"staging {n}")))
            client.flush(timeout=10)
            assert {status for status, _ in recorder.responses} == {200}
        staging_kept = {event_id for event_id in staging_ids if low_56_bits(event_id) < 0.5}
        assert 0 < len(staging_kept) < len(staging_ids)
        kept |= staging_kept
        by_reason["staging-half"] += len(staging_ids) - len(staging_kept)

        wait_until(lambda: len(event_envelopes(relay)) == len(kept), what="the kept events upstream")
        assert {r.envelope.event_id for r in event_envelopes(relay)} == kept
        wait_forwarded(state, error=len(kept))
        totals = outcome_totals(state)
        sampled = {reason: v for (outcome, reason, category), v in totals.items() if outcome == "filtered_sampling"}
        assert {reason: v for reason, v in sampled.items() if v} == dict(by_reason)
        assert all(category == "error" for (outcome, _, category), v in totals.items() if v)
