"""The real sentry-python SDK, end to end: SDK -> relay -> fake upstream, with keys rewritten and items intact."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope as SdkEnvelope

from relay.envelope import Envelope, Item, parse_envelope

from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    BackgroundRelay,
    FakeUpstream,
    Received,
    Reply,
    background_relay,
    outcome_totals,
    received_total,
)

UPSTREAM_PATH = f"/api/{UPSTREAM_PROJECT}/envelope/"


@dataclass
class SdkRequest:
    """One HTTP request the SDK's transport made: its headers and the envelope before compression."""

    headers: dict[str, str]
    envelope: Envelope | None


@dataclass
class SdkRecorder:
    """Wraps the SDK transport to record what it sent and what the relay answered."""

    requests: list[SdkRequest] = field(default_factory=list)
    responses: list[tuple[int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        # The SDK serializes frame locals with repr(); keep ours short however much was recorded.
        return f"<SdkRecorder {len(self.requests)} requests>"

    def attach(self, transport: Any) -> None:
        """Wrap `_send_request` and `_handle_response` on this transport instance."""
        send_request = transport._send_request
        handle_response = transport._handle_response

        def recording_send(body: bytes, headers: dict[str, str], endpoint_type: Any, envelope: Any = None) -> None:
            try:
                send_request(body, headers=headers, endpoint_type=endpoint_type, envelope=envelope)
            finally:
                parsed = parse_envelope(envelope.serialize()) if envelope is not None else None
                with self.lock:
                    self.requests.append(SdkRequest(dict(headers), parsed))

        def recording_handle(response: Any, envelope: Any) -> None:
            with self.lock:
                self.responses.append((response.status, transport._get_header_value(response, "x-sentry-rate-limits")))
            handle_response(response=response, envelope=envelope)

        transport._send_request = recording_send
        transport._handle_response = recording_handle

    def sent_envelopes(self) -> list[Envelope]:
        """Every envelope the SDK put on the wire, as the relay's parser reads it."""
        with self.lock:
            return [r.envelope for r in self.requests if r.envelope is not None]


SCRUBBING = "[secrets, pii]"  # the default rule packs of a production config
plain_and_scrubbing = pytest.mark.parametrize("relay", ["[]", SCRUBBING], indirect=True, ids=["plain", "scrubbing"])


@pytest.fixture
def relay(request: pytest.FixtureRequest) -> Iterator[BackgroundRelay]:
    """A relay with a fake upstream on a background loop; the param names its rule packs (none by default)."""
    with background_relay(rules=getattr(request, "param", "[]")) as running:
        yield running


@contextmanager
def sdk(relay: BackgroundRelay, **options: Any) -> Iterator[tuple[Any, SdkRecorder]]:
    """sentry_sdk initialised against the relay; the client is closed and unset afterwards."""
    settings: dict[str, Any] = {
        "dsn": relay.dsn,
        "traces_sample_rate": 1.0,
        "transport_queue_size": 2000,
        "default_integrations": False,
        "auto_enabling_integrations": False,
        "send_client_reports": False,
    }
    settings.update(options)
    sentry_sdk.init(**settings)
    client = sentry_sdk.get_client()
    recorder = SdkRecorder()
    recorder.attach(client.transport)
    try:
        with sentry_sdk.isolation_scope():
            yield client, recorder
    finally:
        client.close(timeout=10)
        sentry_sdk.get_global_scope().set_client(None)


def capture_raised(exc: Exception) -> str:
    """Raise and capture `exc` from a small frame (the SDK records frame locals)."""
    try:
        raise exc
    except Exception:
        event_id = sentry_sdk.capture_exception()
    assert event_id is not None
    return event_id


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def received_by_event_id(relay: BackgroundRelay) -> dict[str, Received]:
    """Upstream envelopes keyed by their header event_id."""
    return {r.envelope.event_id: r for r in relay.upstream.received if r.envelope.event_id}


def items_of(relay: BackgroundRelay, item_type: str) -> list[Item]:
    """Every upstream item of a type."""
    return [i for r in list(relay.upstream.received) for i in r.envelope.items if i.type == item_type]


def assert_forwarded_clean(rec: Received, relay: BackgroundRelay) -> None:
    """Path, auth and envelope headers carry the upstream identity and no trace of the local key."""
    assert rec.path == UPSTREAM_PATH
    auth = rec.headers["X-Sentry-Auth"]
    assert f"sentry_key={UPSTREAM_KEY}" in auth
    assert "sentry_client=sentry.python/" in auth  # the SDK's client name is passed on
    headers = rec.envelope.headers
    if "dsn" in headers:
        assert headers["dsn"] == f"{relay.upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    if isinstance(headers.get("trace"), dict):
        assert headers["trace"]["public_key"] == UPSTREAM_KEY
    assert KEY.encode() not in rec.envelope.serialize()
    for name, value in rec.headers.items():
        assert KEY not in value, f"local key leaked in upstream header {name}"


JSON_ITEM_TYPES = {"event", "transaction", "session", "sessions", "client_report", "check_in", "span", "feedback"}


def json_differences(before: Any, after: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths where two JSON values differ (added, removed or changed leaves)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[Any, ...]] = []
        for key in before.keys() | after.keys():
            if key not in before or key not in after:
                found.append((*path, key))
            else:
                found += json_differences(before[key], after[key], (*path, key))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d for i, (x, y) in enumerate(zip(before, after, strict=True)) for d in json_differences(x, y, (*path, i))
        ]
    return [] if before == after else [path]


def meta_covers(meta: Any, path: tuple[Any, ...]) -> bool:
    """Whether Sentry `_meta` remarks the value at `path` (or a container around it)."""
    node = meta
    for part in path:
        if not isinstance(node, dict):
            return False
        if "" in node:
            return True
        node = node.get(str(part))
    return isinstance(node, dict) and "" in node


def assert_payload_intact(before: Item, after: Item) -> None:
    """Non-JSON payloads are byte-identical; JSON payloads are equal except where `_meta` records a scrub."""
    if before.type not in JSON_ITEM_TYPES:
        assert after.payload == before.payload, f"{before.type} payload changed"
        return
    sent, got = orjson.loads(before.payload), orjson.loads(after.payload)
    assert type(got) is type(sent), f"{before.type} payload turned into {after.payload[:120]!r}"
    meta = got.pop("_meta", {}) if isinstance(got, dict) else {}
    if isinstance(sent, dict):
        sent.pop("_meta", None)
    unexplained = [p for p in json_differences(sent, got) if not meta_covers(meta, p)]
    assert not unexplained, f"{before.type} item changed at {unexplained} without a _meta remark"


def assert_items_intact(sent: Envelope, got: Envelope) -> None:
    """Same items in the same order with the same headers; payloads intact (scrub remarks aside)."""
    assert [i.type for i in got.items] == [i.type for i in sent.items]
    for before, after in zip(sent.items, got.items, strict=True):
        assert {k: v for k, v in after.headers.items() if k != "length"} == {
            k: v for k, v in before.headers.items() if k != "length"
        }
        assert_payload_intact(before, after)
    unchanged = {k: v for k, v in sent.headers.items() if k not in ("dsn", "trace")}
    assert {k: v for k, v in got.headers.items() if k not in ("dsn", "trace")} == unchanged
    if isinstance(sent.headers.get("trace"), dict):
        trace_before = {k: v for k, v in sent.headers["trace"].items() if k != "public_key"}
        trace_after = {k: v for k, v in got.headers["trace"].items() if k != "public_key"}
        assert trace_after == trace_before


def message_text(event: dict[str, Any]) -> str | None:
    """The message of an event, from `message` or `logentry`."""
    if isinstance(event.get("message"), str):
        return event["message"]
    logentry = event.get("logentry") or {}
    return logentry.get("message") or logentry.get("formatted")


@plain_and_scrubbing
def test_exception_message_and_transaction_arrive_rewritten_and_intact(relay: BackgroundRelay) -> None:
    """An exception, a message and a transaction with spans reach the upstream under its key, byte-identical."""
    with sdk(relay, release="shop@1.0.0", environment="e2e") as (client, recorder):
        try:
            raise ValueError("boom 42")
        except ValueError:
            error_id = sentry_sdk.capture_exception()
        message_id = sentry_sdk.capture_message("hello from the sdk", level="warning")
        with sentry_sdk.start_transaction(name="checkout", op="task") as transaction:
            with sentry_sdk.start_span(op="db.query", name="SELECT * FROM carts"):
                pass
            with sentry_sdk.start_span(op="http.client", name="GET https://payments.example/charge"):
                pass
        client.flush(timeout=10)
        relay.wait_for(3)

        assert {s for s, _ in recorder.responses} == {200}
        received = received_by_event_id(relay)
        transaction_id = next(
            r.envelope.event_id
            for r in relay.upstream.received
            if any(i.type == "transaction" for i in r.envelope.items)
        )
        assert set(received) == {error_id, message_id, transaction_id}
        for rec in relay.upstream.received:
            assert_forwarded_clean(rec, relay)

        sent = {e.event_id: e for e in recorder.sent_envelopes()}
        for event_id, rec in received.items():
            assert_items_intact(sent[event_id], rec.envelope)

        error = received[error_id].envelope.items[0].json()
        assert received[error_id].envelope.items[0].type == "event"
        exception = error["exception"]["values"][-1]
        assert (exception["type"], exception["value"]) == ("ValueError", "boom 42")
        assert error["release"] == "shop@1.0.0"

        message = received[message_id].envelope.items[0].json()
        assert message_text(message) == "hello from the sdk"
        assert message["level"] == "warning"

        tx_envelope = received[transaction_id].envelope
        tx = tx_envelope.items[0].json()
        assert tx["type"] == "transaction"
        assert tx["transaction"] == "checkout"
        assert tx["contexts"]["trace"]["trace_id"] == transaction.trace_id
        spans = {(s["op"], s.get("description")) for s in tx["spans"]}
        assert spans == {("db.query", "SELECT * FROM carts"), ("http.client", "GET https://payments.example/charge")}
        trace_header = tx_envelope.headers["trace"]
        assert trace_header["public_key"] == UPSTREAM_KEY
        assert trace_header["trace_id"] == transaction.trace_id
        assert trace_header.get("release") == "shop@1.0.0"


@pytest.mark.parametrize("relay", [SCRUBBING], indirect=True, ids=["scrubbing"])
def test_sdk_thread_ids_survive_scrubbing(relay: BackgroundRelay) -> None:
    """Thread ids the SDK writes into transactions (15 digits, Luhn-valid one time in ten) are not taken for IMEIs."""
    thread_id = "139640525200256"  # a real CPython thread ident that happens to pass the Luhn check
    with sdk(relay) as (client, recorder):
        with sentry_sdk.start_transaction(name="threads") as transaction:
            transaction.set_data("thread.id", thread_id)
            with sentry_sdk.start_span(op="work", name="in a thread") as span:
                span.set_data("thread.id", thread_id)
        client.flush(timeout=10)
        relay.wait_for(1)
        (sent,) = recorder.sent_envelopes()
    assert sent.items[0].json()["spans"][0]["data"]["thread.id"] == thread_id  # what the SDK sent
    tx = relay.upstream.received[0].envelope.items[0].json()
    assert tx["contexts"]["trace"]["data"]["thread.id"] == thread_id
    assert tx["spans"][0]["data"]["thread.id"] == thread_id
    assert "_meta" not in tx


def test_sdk_trace_header_had_the_local_key(relay: BackgroundRelay) -> None:
    """The SDK really sends its local key in trace.public_key, so the rewrite above is doing work."""
    with sdk(relay) as (client, recorder):
        with sentry_sdk.start_transaction(name="probe"):
            pass
        client.flush(timeout=10)
        relay.wait_for(1)
        (sent,) = recorder.sent_envelopes()
        assert sent.headers["trace"]["public_key"] == KEY
        assert f"sentry_key={KEY}" in recorder.requests[0].headers["X-Sentry-Auth"]
        assert relay.upstream.received[0].envelope.headers["trace"]["public_key"] == UPSTREAM_KEY


def test_envelope_dsn_header_is_rewritten(relay: BackgroundRelay) -> None:
    """An envelope the SDK transport sends with a `dsn` header arrives with the upstream DSN instead."""
    with sdk(relay) as (client, _recorder):
        event_id = "c" * 32
        envelope = SdkEnvelope(
            headers={"event_id": event_id, "dsn": relay.dsn, "trace": {"public_key": KEY, "trace_id": "d" * 32}}
        )
        envelope.add_event({"event_id": event_id, "message": "envelope with dsn", "level": "info"})
        client.transport.capture_envelope(envelope)
        client.flush(timeout=10)
        relay.wait_for(1)
    rec = relay.upstream.received[0]
    assert (
        rec.envelope.headers["dsn"] == f"http://{UPSTREAM_KEY}@{relay.upstream.url.split('://')[1]}/{UPSTREAM_PROJECT}"
    )
    assert rec.envelope.headers["trace"] == {"public_key": UPSTREAM_KEY, "trace_id": "d" * 32}
    assert_forwarded_clean(rec, relay)
    assert rec.envelope.items[0].json()["message"] == "envelope with dsn"


class ProjectsYaml:
    """The `projects:` YAML for a BackgroundRelay, rendered when its fake upstream has a URL."""

    def __init__(self, options: str, keys: tuple[str, ...] = (KEY,)) -> None:
        self.options = options
        self.keys = keys
        self.upstream: FakeUpstream | None = None

    def __format__(self, spec: str) -> str:
        assert self.upstream is not None and self.upstream.url
        dsn = f"{self.upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
        keys = ", ".join(f'"{key}"' for key in self.keys)
        return f"""
projects:
  - id: {PROJECT}
    keys: [{keys}]
    upstream_dsn: "{dsn}"
{self.options}
"""


@contextmanager
def relay_with_project_options(options: str, rules: str = "[]") -> Iterator[BackgroundRelay]:
    """A background relay whose project 42 has extra YAML options (indented four spaces)."""
    projects = ProjectsYaml(options)
    relay = BackgroundRelay(projects=projects, rules=rules)
    projects.upstream = relay.upstream
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.mark.parametrize("rules", ["[]", SCRUBBING], ids=["plain", "scrubbing"])
def test_attachments_arrive_intact(tmp_path: Path, rules: str) -> None:
    """Binary, text and file attachments added to the scope arrive byte for byte with their metadata."""
    binary = os.urandom(200_000) + b"\n\x00\r\n" + bytes(range(256)) * 4
    text = b'line one\nline two\n{"looks": "like json"}\n'
    on_disk = tmp_path / "report.csv"
    on_disk.write_bytes(b"id,name\n1,alice\n2,bob\n")
    # Binary attachments can't be scanned for PII; this project opts in to forwarding them.
    with (
        relay_with_project_options("    forward_unscannable: true", rules) as relay,
        sdk(relay) as (client, recorder),
    ):
        scope = sentry_sdk.get_isolation_scope()
        scope.add_attachment(bytes=binary, filename="blob.bin", content_type="application/octet-stream")
        scope.add_attachment(bytes=text, filename="notes.txt", content_type="text/plain")
        scope.add_attachment(path=str(on_disk))
        event_id = sentry_sdk.capture_message("with attachments")
        client.flush(timeout=10)
        relay.wait_for(1)
        (rec,) = relay.upstream.received
        assert rec.envelope.event_id == event_id
        assert_forwarded_clean(rec, relay)
        (sent,) = recorder.sent_envelopes()
        assert_items_intact(sent, rec.envelope)
    attachments = {i.headers["filename"]: i for i in rec.envelope.items if i.type == "attachment"}
    assert attachments["blob.bin"].payload == binary
    assert attachments["blob.bin"].headers["content_type"] == "application/octet-stream"
    assert attachments["notes.txt"].payload == text
    assert attachments["report.csv"].payload == on_disk.read_bytes()
    assert len(attachments) == 3


@plain_and_scrubbing
def test_application_session_arrives(relay: BackgroundRelay) -> None:
    """A manual application-mode session with an error arrives as a `session` item with release and errors."""
    with sdk(relay, release="shop@1.2.3", environment="staging") as (client, recorder):
        scope = sentry_sdk.get_isolation_scope()
        scope.start_session()
        try:
            raise KeyError("missing")
        except KeyError:
            sentry_sdk.capture_exception()
        scope.end_session()
        client.flush(timeout=10)
        wait_until(lambda: bool(items_of(relay, "session")), what="a session item")
        sessions = [i.json() for i in items_of(relay, "session")]
        assert all(isinstance(s, dict) for s in sessions), f"session payloads mangled: {sessions}"
        final = [s for s in sessions if s.get("status") == "exited"]
        assert final, sessions
        session = final[-1]
        assert session["attrs"]["release"] == "shop@1.2.3"
        assert session["attrs"]["environment"] == "staging"
        assert session["errors"] >= 1
        sent_sessions = [i for e in recorder.sent_envelopes() for i in e.items if i.type == "session"]
        for before, after in zip(sent_sessions, items_of(relay, "session"), strict=True):
            assert_payload_intact(before, after)
        for rec in relay.upstream.received:
            assert_forwarded_clean(rec, relay)


@plain_and_scrubbing
def test_request_mode_sessions_arrive_as_aggregates(relay: BackgroundRelay) -> None:
    """Request-mode sessions are flushed as a `sessions` aggregate item that arrives intact."""
    with sdk(relay, release="api@9.9.9") as (client, recorder):
        scope = sentry_sdk.get_isolation_scope()
        for _ in range(3):
            scope.start_session(session_mode="request")
            scope.end_session()
        client.flush(timeout=10)
        wait_until(lambda: bool(items_of(relay, "sessions")), what="a sessions item")
        (item,) = items_of(relay, "sessions")
        aggregate = item.json()
        assert isinstance(aggregate, dict), f"sessions payload mangled: {item.payload[:120]!r}"
        assert aggregate["attrs"]["release"] == "api@9.9.9"
        assert sum(bucket.get("exited", 0) for bucket in aggregate["aggregates"]) == 3
        (sent,) = [i for e in recorder.sent_envelopes() for i in e.items if i.type == "sessions"]
        assert_payload_intact(sent, item)
        assert_forwarded_clean(relay.upstream.received[0], relay)


@pytest.mark.parametrize(
    ("experiments", "encoding"),
    [
        ({"transport_compression_algo": "gzip"}, "gzip"),
        ({"transport_compression_level": 6}, "gzip"),
        ({}, None),  # the SDK's default: br when the brotli module is importable, else gzip
        ({"transport_compression_algo": "br"}, "br"),
        ({"transport_compression_level": 0}, ""),
    ],
    ids=["gzip", "gzip-level", "default", "br", "uncompressed"],
)
def test_sdk_compression_is_accepted(relay: BackgroundRelay, experiments: dict[str, Any], encoding: str | None) -> None:
    """Whatever Content-Encoding the SDK picks (gzip, br, none), the relay decodes it and forwards the event."""
    with sdk(relay, _experiments=experiments) as (client, recorder):
        event_id = sentry_sdk.capture_message("compressed " * 200)
        client.flush(timeout=10)
        relay.wait_for(1)
        (request,) = recorder.requests
        used = request.headers.get("Content-Encoding", "")
        if encoding is None:
            try:
                import brotli  # noqa: F401
            except ImportError:
                encoding = "gzip"
            else:
                encoding = "br"
        assert used == encoding
        assert recorder.responses == [(200, None)]
        (rec,) = relay.upstream.received
        assert rec.envelope.event_id == event_id
        assert message_text(rec.envelope.items[0].json()) == "compressed " * 200
        assert_items_intact(recorder.sent_envelopes()[0], rec.envelope)


@plain_and_scrubbing
def test_thousand_mixed_events_all_forwarded(relay: BackgroundRelay) -> None:
    """1,000 events (a third each exceptions, messages, transactions) all arrive; every outcome is `forwarded`."""
    event_ids: set[str] = set()
    with sdk(relay) as (client, recorder):
        for i in range(1000):
            kind = i % 3
            if kind == 0:
                event_ids.add(capture_raised(RuntimeError(f"failure {i}")))
            elif kind == 1:
                event_ids.add(sentry_sdk.capture_message(f"message {i}"))
            else:
                with (
                    sentry_sdk.start_transaction(name=f"task-{i}", op="task"),
                    sentry_sdk.start_span(op="work", name=f"step {i}"),
                ):
                    pass
        client.flush(timeout=120)
        relay.wait_for(1000, timeout=120)
        assert len(recorder.responses) == 1000
        assert {status for status, _ in recorder.responses} == {200}

    assert relay.state is not None
    state = relay.state

    def settled() -> bool:
        forwarded = sum(v for (outcome, _, _), v in outcome_totals(state).items() if outcome == "forwarded")
        return forwarded >= received_total(state)

    wait_until(settled, what="every received item to be settled")
    totals = outcome_totals(state)
    assert {k: v for k, v in totals.items() if v and k[0] != "forwarded"} == {}
    assert totals.get(("forwarded", "none", "error")) == 667
    assert totals.get(("forwarded", "none", "transaction")) == 333
    assert received_total(state) == sum(totals.values()) == 1000
    assert state.spool.pending() == 0

    assert len(relay.upstream.received) == 1000
    assert len(items_of(relay, "event")) == 667
    transactions = items_of(relay, "transaction")
    assert len(transactions) == 333
    assert all(len(t.json()["spans"]) == 1 for t in transactions)
    received_ids = {r.envelope.event_id for r in relay.upstream.received}
    assert event_ids <= received_ids
    assert all(KEY.encode() not in r.envelope.serialize() for r in relay.upstream.received)
    assert {r.headers["X-Sentry-Auth"].split("sentry_key=")[1].split(",")[0] for r in relay.upstream.received} == {
        UPSTREAM_KEY
    }


def test_upstream_rate_limit_reaches_the_sdk(relay: BackgroundRelay) -> None:
    """Upstream 429s errors; the relay then answers 429 + X-Sentry-Rate-Limits and the SDK stops only errors."""
    relay.upstream.script.append(Reply(429, {"X-Sentry-Rate-Limits": "60:error:key", "Retry-After": "60"}))
    assert relay.state is not None
    state = relay.state
    with sdk(relay) as (client, recorder):
        transport = client.transport

        # 1. The first error is accepted by the relay, which learns the limit from the upstream's 429.
        sentry_sdk.capture_message("first error")
        client.flush(timeout=10)
        wait_until(lambda: len(relay.upstream.attempts) >= 1, what="the upstream attempt")
        wait_until(
            lambda: outcome_totals(state).get(("rate_limited", "upstream_limited_on_send", "error"), 0) == 1,
            what="the rate-limited outcome",
        )
        assert recorder.responses == [(200, None)]
        assert not transport._check_disabled("error")

        # 2. The next error is refused by the relay itself, telling the SDK which category is limited.
        sentry_sdk.capture_message("second error")
        client.flush(timeout=10)
        wait_until(lambda: len(recorder.responses) == 2, what="the relay's answer")
        status, limits = recorder.responses[1]
        assert status == 429
        assert limits is not None
        seconds, categories, scope = limits.split(",")[0].strip().split(":")[:3]
        assert 0 < int(seconds) <= 60
        assert categories.split(";") == ["error"]
        assert scope == "key"
        assert transport._check_disabled("error")
        assert "error" in transport._disabled_until
        assert not transport._check_disabled("transaction")

        # 3. The SDK now keeps errors to itself: nothing reaches the relay.
        errors_received = received_total(state)
        requests_before = len(recorder.requests)
        sentry_sdk.capture_message("third error")
        try:
            raise ValueError("also limited")
        except ValueError:
            sentry_sdk.capture_exception()
        client.flush(timeout=10)
        assert len(recorder.requests) == requests_before
        assert received_total(state) == errors_received

        # 4. Transactions still flow all the way to the upstream.
        with sentry_sdk.start_transaction(name="still-flowing"), sentry_sdk.start_span(op="work", name="unlimited"):
            pass
        client.flush(timeout=10)
        relay.wait_for(1)

    assert [i.type for r in relay.upstream.received for i in r.envelope.items] == ["transaction"]
    tx = relay.upstream.received[0]
    assert tx.envelope.items[0].json()["transaction"] == "still-flowing"
    assert_forwarded_clean(tx, relay)
    totals = outcome_totals(state)
    assert totals.get(("rate_limited", "upstream_limited_on_send", "error")) == 1  # the 429 the upstream gave
    assert totals.get(("rate_limited", "upstream_rate_limited", "error")) == 1  # refused at the door
    assert totals.get(("forwarded", "none", "transaction")) == 1


def test_project_id_in_sdk_dsn_is_the_local_one(relay: BackgroundRelay) -> None:
    """The SDK posts to the local project id; only the relay knows the upstream one."""
    with sdk(relay) as (client, recorder):
        sentry_sdk.capture_message("where did it go")
        client.flush(timeout=10)
        relay.wait_for(1)
    assert relay.dsn.endswith(f"/{PROJECT}")
    assert relay.upstream.received[0].path == UPSTREAM_PATH
    assert recorder.responses == [(200, None)]
