"""The real @sentry/node SDK in a Node process, end to end: app -> relay -> fake upstream, over HTTP.

tests/js/node_app.mjs is a small server application that uses the SDK as applications do. It sends every item
type @sentry/node 11 sends (events with an attachment, feedback, logs, spans or a transaction, trace metrics,
check-ins, sessions and session aggregates, client reports), all carrying personal data apps really send. The app
records each request its SDK transport made, as it went on the wire, so the test can hold the relay to it: every
item arrives or ends in a documented outcome, nothing planted arrives (but the feedback's contact address), and
what arrives is still what Sentry accepts.

The app runs once per trace lifecycle: v11's default streams spans (`span` v2 containers), `static` sends
transactions.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from sentry_relay.processing import StoreNormalizer

from relay.envelope import Envelope, Item, parse_envelope
from relay.ingest import RelayState

from ..support import (
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    Received,
    background_relay,
    outcome_totals,
)
from .test_sentry_sdk import json_differences

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
APP = JS / "node_app.mjs"
SDK_PACKAGE = JS / "node_modules" / "@sentry" / "node" / "package.json"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None or not SDK_PACKAGE.exists(),
    reason="needs node and tests/js/node_modules/@sentry/node (npm ci --prefix tests/js; .ci/run does)",
)

SCRUBBING = "[secrets, pii]"  # the default rule packs of a production config
# Planted by the app (it reads them from $PLANTED), each in one place, so a leak names where it came from.
PLANTED = {
    "error_email": "jane.doe@example.com",  # the error's message
    "user_email": "john.roe@example.com",  # Sentry.setUser: events, sessions (`did`), logs, spans, metrics
    "user_ip": "203.0.113.77",  # Sentry.setUser
    "tag_email": "mary.major@example.net",  # a tag
    "password": "Tr0ub4dor&3-horse",  # extra, under `password`
    "card": "4111 1111 1111 1111",  # extra, a Visa test number
    "console_email": "sam.console@example.com",  # console.log, so a breadcrumb
    "attachment_text": "contact kim.lee@example.com",  # notes.txt
    "log_param_email": "richard.miles@example.com",  # a log message parameter (logger.fmt)
    "log_attribute_email": "sally.stone@example.com",  # a log attribute
    "sql": "SELECT * FROM users WHERE email = 'pat.query@example.com'",  # a db span
    "metric_email": "rick.metric@example.com",  # a trace metric attribute
    "feedback_message": "I was charged twice, call me on +44 20 7946 0958",
    "feedback_email": "fran.feedback@example.com",  # contexts.feedback.contact_email: kept on purpose
    "feedback_name": "Brigitte Lambert",  # contexts.feedback.name
    "query_email": "max.query@example.com",  # the query string of a request to the app's HTTP server
}
# What must not reach the upstream in any form: the values, the addresses' local parts (URL-encoded `@` too),
# the card and phone digits run together, the name's parts.
LOCAL_PARTS = [v.split("@")[0] for k, v in PLANTED.items() if k.endswith("_email")]
LEAKS = (
    *(v for k, v in PLANTED.items() if k not in ("sql", "feedback_message", "attachment_text")),
    *LOCAL_PARTS,
    "kim.lee",
    "pat.query",
    "Tr0ub4dor",
    "4111111111111111",
    "+44 20 7946 0958",
    "7946 0958",
    "79460958",
    "Brigitte",
    "Lambert",
)
# contexts.feedback fields the relay keeps: the contact address, by design (README, "User feedback"). The name is
# left out of the leak check and held to its own test below, which fails: see test_feedback_name_is_scrubbed.
FEEDBACK_KEPT = ("contact_email", "name")
SQL_MASKED = "SELECT * FROM users WHERE email = %s"

# What @sentry/node 11.12 sends from the app, per trace lifecycle (v11 streams spans unless told `static`).
COMMON_TYPES = {
    "event",
    "attachment",
    "feedback",
    "log",
    "trace_metric",
    "check_in",
    "session",
    "sessions",
    "client_report",
}
EXPECTED_TYPES = {"stream": COMMON_TYPES | {"span"}, "static": COMMON_TYPES | {"transaction"}}
CONTAINER_TYPES = ("log", "span", "trace_metric")
# Sentry's data categories, as the relay's outcomes count them (README, "Outcomes").
CATEGORY = {
    "event": "error",
    "transaction": "transaction",
    "attachment": "attachment",
    "feedback": "feedback",
    "log": "log_item",
    "span": "span",
    "trace_metric": "trace_metric",
    "check_in": "monitor",
    "session": "session",
    "sessions": "session",
    "client_report": "internal",
}
NORMALIZED_TYPES = ("event", "transaction", "feedback")  # event payloads Sentry's store normalizer takes
# Normalizer complaints on fields a known relay defect breaks (none left: each had its own test below).
KNOWN_DEFECT_FIELDS: set[str] = set()


@dataclass(frozen=True)
class SdkRequest:
    """One request the SDK's transport made: its headers, the envelope it carried and the relay's status."""

    headers: dict[str, str]
    envelope: Envelope
    status: int | None


@dataclass(frozen=True)
class Run:
    """One run of the app against a scrubbing relay, once the relay has settled every item and stopped."""

    lifecycle: str
    sent: list[SdkRequest]
    received: list[Received]
    outcomes: dict[tuple[str, str, str], float]
    received_by_category: dict[str, float]

    def sent_items(self, item_type: str) -> list[Item]:
        """Every item of a type the SDK sent."""
        return [i for r in self.sent for i in r.envelope.items if i.type == item_type]

    def upstream_items(self, item_type: str) -> list[Item]:
        """Every item of a type the upstream received."""
        return [i for r in self.received for i in r.envelope.items if i.type == item_type]


def read_recording(path: Path) -> list[SdkRequest]:
    """The app's record of its SDK's requests: one JSON line each, the body as sent (gzip undone)."""
    requests = []
    for line in path.read_bytes().splitlines():
        record = orjson.loads(line)
        headers = {k.lower(): v for k, v in (record["headers"] or {}).items()}
        body = base64.b64decode(record["body"])
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        requests.append(SdkRequest(headers, parse_envelope(body), record["status"]))
    return requests


def quantity(item: Item) -> int:
    """How many items an item counts as: a container's `item_count`, else 1."""
    return int(item.headers["item_count"]) if item.type in CONTAINER_TYPES else 1


def received_by_category(state: RelayState) -> dict[str, float]:
    """relay_items_received_total by category."""
    return {
        s.labels["category"]: s.value
        for m in state.metrics.items_received.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


def wait_until_settled(state: RelayState, expected: int, timeout: float = 30.0) -> None:
    """Poll until the relay received `expected` items and every one has its outcome."""
    deadline = time.monotonic() + timeout
    while True:
        received = sum(received_by_category(state).values())
        settled = sum(outcome_totals(state).values())
        if received == expected and settled == received:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"relay received {received} items of {expected}, settled {settled}")
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["stream", "static"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """tests/js/node_app.mjs run once against a scrubbing relay (production packs), with spans streamed
    (v11's default) or sent as transactions."""
    lifecycle: str = request.param
    recording = tmp_path_factory.mktemp(f"node-{lifecycle}") / "requests.jsonl"
    with background_relay(rules=SCRUBBING) as relay:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
        env |= {
            "SENTRY_DSN": relay.dsn,
            "SENTRY_TRACE_LIFECYCLE": lifecycle,
            "PLANTED": orjson.dumps(PLANTED).decode(),
            "RECORD_FILE": str(recording),
        }
        assert NODE is not None
        app = subprocess.run([NODE, str(APP)], cwd=JS, env=env, capture_output=True, text=True, timeout=90)
        assert app.returncode == 0, f"node exited {app.returncode} (3: flush timed out): {app.stderr[-4000:]}"
        sent = read_recording(recording)
        assert relay.state is not None
        state = relay.state
        wait_until_settled(state, sum(quantity(i) for r in sent for i in r.envelope.items))
    return Run(lifecycle, sent, list(relay.upstream.received), outcome_totals(state), received_by_category(state))


def sdk_version() -> str:
    """The @sentry/node version installed from tests/js/package-lock.json."""
    version: str = orjson.loads(SDK_PACKAGE.read_bytes())["version"]
    return version


def documented_outcomes() -> set[tuple[str, str]]:
    """(outcome, reason) pairs with a literal reason in the README's Outcomes table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Outcomes\n", 1)[1].split("\n## ", 1)[0]
    found = set(re.findall(r"^\| `(\w+)` \| `([\w:]+)` \|", section, re.MULTILINE))
    assert ("forwarded", "none") in found and len(found) > 10, "the README's Outcomes table moved or changed shape"
    return found


def without_feedback_kept(item: Item) -> bytes:
    """An item's payload, less the contexts.feedback fields the relay keeps when it is feedback."""
    if item.type != "feedback":
        return item.payload
    payload = orjson.loads(item.payload)
    for key in FEEDBACK_KEPT:
        payload.get("contexts", {}).get("feedback", {}).pop(key, None)
    return orjson.dumps(payload)


def everything_received(run: Run) -> str:
    """All the upstream got, as one lower-cased text: request headers, envelope and item headers and payloads
    (attachments included), less the feedback fields kept on purpose."""
    parts: list[bytes] = []
    for rec in run.received:
        parts += [orjson.dumps({str(k): v for k, v in rec.headers.items()}), orjson.dumps(rec.envelope.headers)]
        for item in rec.envelope.items:
            parts += [orjson.dumps(item.headers), without_feedback_kept(item)]
    return b"\n".join(parts).decode("utf-8", errors="replace").lower()


def leaks(text: str, needles: tuple[str, ...] = LEAKS) -> dict[str, str]:
    """Each needle found in `text`: how often, and the text around its first occurrence."""
    found = {}
    for needle in needles:
        if (at := text.find(needle.lower())) >= 0:
            found[needle] = f"{text.count(needle.lower())}x, first in ...{text[max(0, at - 80) : at + 60]}..."
    return found


def meta_covers(meta: Any, path: tuple[Any, ...]) -> bool:
    """Whether Sentry `_meta` remarks the value at `path` (or a container around it; list indices are keys)."""
    node = meta
    for part in path:
        if not isinstance(node, dict):
            return False
        if "" in node:
            return True
        node = node.get(str(part))
    return isinstance(node, dict) and "" in node


def attribute(item: dict[str, Any], key: str) -> Any:
    """The value of a v2 item's attribute (`{"value": ..., "type": ...}`), or None."""
    return (item.get("attributes", {}).get(key) or {}).get("value")


def first_inner_item(container: Item) -> tuple[str, float]:
    """What tells a container from another of its type: its first item's span id and timestamp."""
    first = container.json()["items"][0]
    return str(first.get("span_id")), float(first.get("timestamp") or first.get("start_timestamp") or 0)


def normalization_errors(normalizer: StoreNormalizer, payload: bytes) -> list[dict[str, Any]]:
    """The `errors` Sentry's own event normalizer records for a JSON payload (it raises on what it rejects)."""
    errors: list[dict[str, Any]] = normalizer.normalize_event(raw_event=payload).get("errors") or []
    return errors


def error_events(items: list[Item]) -> dict[str, dict[str, Any]]:
    """Error events by the start of their exception value."""
    return {e["exception"]["values"][-1]["value"].split(":")[0]: e for e in (i.json() for i in items)}


def test_every_item_the_sdk_sent_is_accounted_for(run: Run) -> None:
    """Each item @sentry/node sent is counted on receipt and either arrived or ended in a documented outcome."""
    assert [r.status for r in run.sent if r.status != 200] == []
    assert {i.type for r in run.sent for i in r.envelope.items} == EXPECTED_TYPES[run.lifecycle]

    sent: Counter[str] = Counter()
    for request in run.sent:
        for item in request.envelope.items:
            sent[CATEGORY[item.type]] += quantity(item)
    assert run.received_by_category == sent  # counted on receipt, containers by the items inside

    settled: defaultdict[str, float] = defaultdict(float)
    forwarded: defaultdict[str, float] = defaultdict(float)
    for (outcome, _, category), value in run.outcomes.items():
        settled[category] += value
        if outcome == "forwarded":
            forwarded[category] += value
    assert settled == sent  # items in = sum of outcomes
    not_forwarded = {(o, r, c): v for (o, r, c), v in run.outcomes.items() if o != "forwarded" and v}
    assert {(o, r) for o, r, _ in not_forwarded} <= documented_outcomes(), not_forwarded

    # What was forwarded arrived (a client report the relay makes of its own drops aside).
    sdk_reports = [orjson.loads(i.payload) for i in run.sent_items("client_report")]
    arrived: Counter[str] = Counter()
    for rec in run.received:
        for item in rec.envelope.items:
            if item.type != "client_report" or item.json() in sdk_reports:
                arrived[CATEGORY[item.type]] += quantity(item)
    assert arrived == forwarded


def test_no_planted_personal_value_reaches_the_upstream(run: Run) -> None:
    """No planted value arrives in any item, header or attachment (the feedback's contact address aside)."""
    sent_text = b"\n".join(r.envelope.serialize() for r in run.sent).decode(errors="replace").lower()
    planted = set(PLANTED.values())
    sent_values = {v for v in planted if v.lower() in sent_text or quote(v, safe="").lower() in sent_text}
    assert sent_values == planted  # the SDK did send them all (the query string's address URL-encoded)
    assert leaks(everything_received(run)) == {}


def test_error_event_arrives_scrubbed_with_its_debugging_value(run: Run) -> None:
    """The error keeps type, release, tags and SDK; its message, user, tag, extra and breadcrumb lose the data."""
    errors = error_events(run.upstream_items("event"))
    error = errors["could not charge [email]"]
    assert error["exception"]["values"][-1]["type"] == "Error"
    assert (error["release"], error["environment"]) == ("shop@1.4.2", "e2e")
    assert error["sdk"]["name"] == "sentry.javascript.node"
    assert error["sdk"]["version"] == sdk_version()  # the pinned package, not some other copy
    assert error["tags"] == {"plan": "pro", "customer": "[email]"}
    assert error["extra"]["payment"] == {"password": "[Filtered]", "card_number": "[creditcard]"}
    assert error["user"]["email"] == "[email]" and not error["user"].get("ip_address")
    (console,) = [b for b in error["breadcrumbs"] if b["category"] == "console"]
    assert console["message"] == "sending the receipt to [email]"

    # The error raised while serving a request keeps the request's shape, its query string scrubbed.
    request = errors["signup failed"]["request"]
    assert request["method"] == "GET"
    assert request["query_string"] == "email=[email]"


def test_attachment_arrives_with_its_error_scrubbed(run: Run) -> None:
    """notes.txt arrives beside its error, its e-mail address replaced."""
    (envelope,) = [r.envelope for r in run.received if any(i.type == "attachment" for i in r.envelope.items)]
    assert [i.type for i in envelope.items] == ["event", "attachment"]
    assert envelope.items[0].json()["event_id"] == envelope.event_id
    attachment = envelope.items[1]
    assert attachment.headers["filename"] == "notes.txt"
    assert attachment.payload == b"contact [email]"


def test_log_batch_arrives_as_one_container_with_meta_per_log(run: Run) -> None:
    """The SDK's log batch arrives as one container, item_count the logs inside, each with its own `_meta`."""
    (sent_item,) = run.sent_items("log")
    (item,) = run.upstream_items("log")
    payload = item.json()
    assert len(payload["items"]) == item.headers["item_count"] == sent_item.headers["item_count"] == 3
    assert item.headers["content_type"] == sent_item.headers["content_type"] == "application/vnd.sentry.items.log+json"
    assert "_meta" not in payload
    logs = {log["level"]: log for log in payload["items"]}
    reset = logs["info"]
    assert reset["body"] == "password reset mail sent to [email]"
    assert attribute(reset, "sentry.message.template") == "password reset mail sent to %s"
    assert attribute(reset, "sentry.message.parameter.0") == "[email]"
    assert attribute(reset, "customer") == "[email]"
    assert {"customer", "sentry.message.parameter.0", "user.email"} <= reset["_meta"]["attributes"].keys()
    assert reset["_meta"]["body"][""]["rem"][0][0] == "pii.email"
    assert logs["error"]["body"] == "payment declined for order A-1043"  # nothing personal: kept
    assert attribute(logs["warn"], "cart.items") == 3
    for log in payload["items"]:  # the user's address is on every log, so every log has its own remark
        assert attribute(log, "user.email") == "[email]"
        assert meta_covers(log["_meta"], ("attributes", "user.email", "value"))


@pytest.mark.parametrize("item_type", CONTAINER_TYPES)
def test_containers_keep_their_items_and_explain_each_change(run: Run, item_type: str) -> None:
    """Logs, spans and trace metrics keep their count and order; each change is remarked in that item's `_meta`."""
    # (Envelopes are forwarded concurrently: pair the containers by their first item, not by arrival.)
    sent = sorted(run.sent_items(item_type), key=first_inner_item)
    got = sorted(run.upstream_items(item_type), key=first_inner_item)
    if item_type == "span" and run.lifecycle == "static":
        assert (sent, got) == ([], [])
        return
    assert sent and len(got) == len(sent)
    for before, after in zip(sent, got, strict=True):
        assert after.headers["item_count"] == before.headers["item_count"] == len(after.json()["items"])
        for original, scrubbed in zip(before.json()["items"], orjson.loads(after.payload)["items"], strict=True):
            meta = scrubbed.pop("_meta", {})
            unexplained = [p for p in json_differences(original, scrubbed) if not meta_covers(meta, p)]
            assert unexplained == [], f"{item_type} {original.get('name') or original.get('body')}"


def test_db_span_sql_literal_is_masked(run: Run) -> None:
    """The db span's SQL keeps its structure; the literal e-mail address becomes a placeholder."""
    if run.lifecycle == "stream":
        spans = [s for item in run.upstream_items("span") for s in item.json()["items"]]
        (db,) = [s for s in spans if attribute(s, "sentry.op") == "db"]
        assert db["name"] == SQL_MASKED
        assert attribute(db, "db.system.name") == "postgresql"
        (checkout,) = [s for s in spans if s["name"] == "checkout"]
        assert db["parent_span_id"] == checkout["span_id"] and checkout["is_segment"]
    else:
        (item,) = run.upstream_items("transaction")
        transaction = item.json()
        assert transaction["transaction"] == "checkout"
        (db,) = [s for s in transaction["spans"] if s["op"] == "db"]
        assert db["description"] == SQL_MASKED
        assert db["data"]["db.system.name"] == "postgresql"


def test_masked_sql_is_remarked(run: Run) -> None:
    """Masking the db span's SQL literal is remarked in `_meta` (rule pii.sql_literals), as every change is."""
    if run.lifecycle == "stream":
        spans = [s for item in run.upstream_items("span") for s in item.json()["items"]]
        (db,) = [s for s in spans if attribute(s, "sentry.op") == "db"]
        remark = db.get("_meta", {}).get("name", {}).get("", {})
    else:
        (item,) = run.upstream_items("transaction")
        transaction = item.json()
        (index,) = [i for i, s in enumerate(transaction["spans"]) if s["op"] == "db"]
        remark = transaction["_meta"]["spans"][str(index)]["description"][""]
    assert [r[0] for r in remark.get("rem", [])] == ["pii.sql_literals"]
    assert remark["len"] == len(PLANTED["sql"])


def test_events_pass_sentrys_normalizer(run: Run) -> None:
    """Every event, transaction and feedback upstream passes Sentry's own normalizer as the SDK's original did."""
    normalizer = StoreNormalizer(project_id=UPSTREAM_PROJECT)
    originals = {i.json()["event_id"]: i for t in NORMALIZED_TYPES for i in run.sent_items(t)}
    checked = []
    for item_type in NORMALIZED_TYPES:
        for item in run.upstream_items(item_type):
            had = normalization_errors(normalizer, originals[item.json()["event_id"]].payload)
            assert had == [], f"the SDK's own {item_type}: {had}"
            got = normalization_errors(normalizer, item.payload)
            assert [e for e in got if e.get("name") not in KNOWN_DEFECT_FIELDS] == [], f"{item_type}: {got}"
            checked.append(item_type)
    assert Counter(checked) == {
        "event": 2,
        "feedback": 1,
        **({"transaction": 1} if run.lifecycle == "static" else {}),
    }


def test_request_cookies_keep_their_shape(run: Run) -> None:
    """An event's empty cookies object stays an object, which Sentry's normalizer takes without complaint."""
    sent = error_events(run.sent_items("event"))["signup failed"]
    (item,) = [i for i in run.upstream_items("event") if i.json()["event_id"] == sent["event_id"]]
    assert sent["request"]["cookies"] == {}  # what @sentry/node sends for a request without cookies
    assert item.json()["request"]["cookies"] == {}
    assert normalization_errors(StoreNormalizer(project_id=UPSTREAM_PROJECT), item.payload) == []


def test_feedback_keeps_the_contact_address_and_scrubs_the_message(run: Run) -> None:
    """Feedback keeps the contact address and its link to the error; the message and the user lose the data."""
    (item,) = run.upstream_items("feedback")
    feedback = item.json()
    context = feedback["contexts"]["feedback"]
    assert context["contact_email"] == PLANTED["feedback_email"]
    assert context["message"] == "I was charged twice, call me on [phone]"
    error_id = error_events(run.upstream_items("event"))["could not charge [email]"]["event_id"]
    assert context["associated_event_id"] == error_id
    assert feedback["user"]["email"] == "[email]"


def test_checkins_sessions_and_client_reports_arrive_intact(run: Run) -> None:
    """Check-ins, session aggregates and client reports arrive as sent; sessions lose the user's address and IP."""
    # (Envelopes are forwarded concurrently: their order upstream is not the SDK's.)
    checkins = sorted((i.json() for i in run.upstream_items("check_in")), key=lambda c: c["status"] != "in_progress")
    assert checkins == sorted(
        (i.json() for i in run.sent_items("check_in")), key=lambda c: c["status"] != "in_progress"
    )
    assert [c["status"] for c in checkins] == ["in_progress", "ok"]
    assert checkins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 3 * * *"}

    assert [i.json() for i in run.upstream_items("sessions")] == [i.json() for i in run.sent_items("sessions")]
    # The process's session goes out with its first error, and again closed (`exited`) when the server's first
    # request starts, unless that comes before the error was sent: the SDK then drops it (a race in the SDK).
    sessions = sorted((i.json() for i in run.upstream_items("session")), key=lambda s: s["timestamp"])
    assert (sessions[0]["status"], sessions[0]["errors"], sessions[0]["init"]) == ("ok", 1, True)
    assert [s["status"] for s in sessions[1:]] in ([], ["exited"])
    for session in sessions:
        assert session["attrs"]["release"] == "shop@1.4.2"
        assert not session["attrs"].get("ip_address")

    reports = [i.json() for i in run.upstream_items("client_report")]
    assert reports == [i.json() for i in run.sent_items("client_report")]
    assert {"reason": "before_send", "category": "error", "quantity": 1} in reports[0]["discarded_events"]


def test_every_request_goes_out_under_the_upstream_key(run: Run) -> None:
    """Each envelope goes to the upstream project with its key and the SDK's client name, trace keys rewritten."""
    for rec in run.received:
        assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
        auth = rec.headers["X-Sentry-Auth"]
        assert f"sentry_key={UPSTREAM_KEY}" in auth
        assert f"sentry_client=sentry.javascript.node/{sdk_version()}" in auth
        trace = rec.envelope.headers.get("trace")
        if isinstance(trace, dict):
            assert trace["public_key"] == UPSTREAM_KEY
