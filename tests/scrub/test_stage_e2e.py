"""The scrub stage end to end: the real SDK through the relay, attachments, per-project rules, and failing closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import sentry_sdk
from sentry_sdk.scrubber import EventScrubber

from relay.config import Config, ProjectConfig
from relay.envelope import Envelope, Item
from relay.ingest import RelayState
from relay.metrics import Metrics
from relay.outcomes import Outcomes
from relay.pipeline import ProcessingContext
from relay.rules import load_pack
from relay.scrub.engine import Scrubber, ScrubError
from relay.scrub.registry import ScrubberRegistry
from relay.scrub.stage import ScrubStage

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    OTHER_KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    auth_header,
    background_relay,
    envelope_bytes,
    outcome_totals,
    received_total,
)

URL = f"/api/{PROJECT}/envelope/"
EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
THIRD_KEY = "11112222333344445555666677778888"
SECOND_PROJECT = 43
BINARY = b"\x00\x01MDMP\xff\xfe alice@example.com \x00"


def projects_yaml(upstream_url: str, *, rules: str = "[secrets, pii]", extra: str = "", second: bool = False) -> str:
    """The default `projects:` block of config_text, with project 42's rules and options, and maybe a project 43."""
    dsn = upstream_url.replace("://", f"://{UPSTREAM_KEY}@")
    block = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{dsn}/{UPSTREAM_PROJECT}"
    rules: {rules}
{extra}"""
    if second:
        block += f"""
  - id: {SECOND_PROJECT}
    keys: ["{THIRD_KEY}"]
    upstream_dsn: "{dsn}/{UPSTREAM_PROJECT + 1}"
"""
    return block


def event_envelope(
    event: dict[str, Any], *attachments: tuple[dict[str, Any], bytes], event_id: str = EVENT_ID
) -> bytes:
    """An envelope with one event and optional attachments."""
    return envelope_bytes(
        {"event_id": event_id}, ({"type": "event"}, orjson.dumps(event)), *((h, p) for h, p in attachments)
    )


async def settled(state: RelayState, timeout: float = 10.0) -> None:
    """Wait until the relay's queue holds nothing (every entry settled with an outcome)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while state.spool.pending():
        if loop.time() > deadline:
            raise AssertionError(f"queue still holds {state.spool.pending()} envelopes")
        await asyncio.sleep(0.01)


def rule_ids(meta: Any) -> set[str]:
    """Every rule id named in `_meta` remarks."""
    found: set[str] = set()
    if isinstance(meta, dict):
        for key, value in meta.items():
            if key == "" and isinstance(value, dict):
                found.update(remark[0] for remark in value.get("rem", []))
            else:
                found |= rule_ids(value)
    return found


# -- the real SDK ----------------------------------------------------------------------------------

PLANTED = [
    "alice@example.com",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "hunter2-Secret!",
    "AKIAIOSFODNN7EXAMPLE",
    "dave@example.com",
    "203.0.113.9",
    "tok_abcdef123456",
    "carol@example.com",
]


def checkout_with_secrets() -> None:
    """Raise with personal data and secrets in the frame's locals."""
    email = "alice@example.com"
    card = "4111 1111 1111 1111"
    phone = "+44 20 7946 0958"
    password = "hunter2-Secret!"
    aws_key = "AKIAIOSFODNN7EXAMPLE"
    raise ValueError(f"payment declined ({len(email + card + phone + password + aws_key)})")


def test_sdk_event_arrives_scrubbed() -> None:
    """A real SDK exception arrives without planted values, with `_meta` rule ids and its type/function/line intact."""
    sent: list[dict[str, Any]] = []

    def before_send(event: Any, hint: Any) -> Any:
        sent.append(json.loads(json.dumps(event, default=str)))
        return event

    with background_relay(rules="[secrets, pii]") as relay:
        sentry_sdk.init(
            dsn=relay.dsn,
            send_default_pii=True,
            include_local_variables=True,
            default_integrations=False,
            auto_enabling_integrations=False,
            send_client_reports=False,
            release="shop@1.2.3",
            environment="e2e",
            before_send=before_send,
            # The SDK's own denylist off: the relay must do all the scrubbing.
            event_scrubber=EventScrubber(denylist=[], pii_denylist=[], send_default_pii=True),
        )
        client = sentry_sdk.get_client()
        try:
            with sentry_sdk.isolation_scope():
                sentry_sdk.set_user({"id": "42", "email": "dave@example.com", "ip_address": "203.0.113.9"})
                sentry_sdk.add_breadcrumb(
                    category="http",
                    message="GET https://shop.example.com/cb?token=tok_abcdef123456&email=carol@example.com",
                    data={"url": "https://shop.example.com/cb?token=tok_abcdef123456&email=carol@example.com"},
                )
                try:
                    checkout_with_secrets()
                except ValueError:
                    event_id = sentry_sdk.capture_exception()
            client.flush(timeout=10)
            relay.wait_for(1)
        finally:
            client.close(timeout=10)
            sentry_sdk.get_global_scope().set_client(None)

        [original] = sent
        original_text = json.dumps(original)
        for value in PLANTED:
            assert value in original_text, f"the SDK did not send {value!r}; the test proves nothing"

        [rec] = relay.upstream.received
        assert rec.envelope.event_id == event_id
        raw = rec.envelope.serialize()
        for value in PLANTED:
            assert value.encode() not in raw, f"{value!r} reached the upstream"
            assert json.dumps(value)[1:-1].encode() not in raw
        [item] = [i for i in rec.envelope.items if i.type == "event"]
        event = orjson.loads(item.payload)

        assert {
            "pii.email",
            "pii.credit_card",
            "pii.phone",
            "pii.ip_fields",
            "secrets.sensitive_keys",
            "secrets.aws",
        } <= rule_ids(event["_meta"])
        assert event["user"] == {"id": "42", "email": "[email]", "ip_address": None}
        assert event["breadcrumbs"]["values"][0]["data"] == {
            "url": "https://shop.example.com/cb?token=[Filtered]&email=[email]"
        }
        sent_exc = original["exception"]["values"][0]
        got_exc = event["exception"]["values"][0]
        assert got_exc["type"] == sent_exc["type"] == "ValueError"
        assert got_exc["value"] == sent_exc["value"]
        sent_frame = sent_exc["stacktrace"]["frames"][-1]
        got_frame = got_exc["stacktrace"]["frames"][-1]
        assert got_frame["function"] == sent_frame["function"] == "checkout_with_secrets"
        assert got_frame["lineno"] == sent_frame["lineno"]
        assert got_frame["module"] == sent_frame["module"]
        assert got_frame["filename"] == sent_frame["filename"]
        assert got_frame["vars"] == {
            "email": "'[email]'",
            "card": "'[creditcard]'",
            "phone": "'[phone]'",
            "password": "[Filtered]",
            "aws_key": "'[Filtered]'",
        }
        assert (event["release"], event["environment"], event["event_id"]) == ("shop@1.2.3", "e2e", event_id)


# -- attachments and outcomes ---------------------------------------------------------------------


async def test_binary_attachment_dropped_event_forwarded(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A binary attachment can't be scrubbed: dropped with filtered/unscannable; the event still arrives."""
    client = await make_relay(rules="[secrets, pii]")
    body = event_envelope(
        {"message": "crash for alice@example.com"},
        ({"type": "attachment", "filename": "core.bin", "content_type": "application/octet-stream"}, BINARY),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    [rec] = upstream.received
    assert [i.type for i in rec.envelope.items] == ["event"]
    assert orjson.loads(rec.envelope.items[0].payload)["message"] == "crash for [email]"
    assert BINARY not in rec.envelope.serialize()
    totals = outcome_totals(state)
    assert totals[("filtered", "unscannable", "attachment")] == 1
    assert totals[("forwarded", "none", "error")] == 1
    assert received_total(state) == sum(totals.values()) == 2


async def test_forward_unscannable_project_gets_attachment_intact(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """With `forward_unscannable: true` the binary attachment arrives byte-identical (the event still scrubbed)."""
    client = await make_relay(
        rules="[secrets, pii]", projects=projects_yaml(upstream.url, extra="    forward_unscannable: true")
    )
    body = event_envelope(
        {"message": "crash for alice@example.com"},
        ({"type": "attachment", "filename": "core.bin", "content_type": "application/octet-stream"}, BINARY),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    [rec] = upstream.received
    assert [i.type for i in rec.envelope.items] == ["event", "attachment"]
    assert orjson.loads(rec.envelope.items[0].payload)["message"] == "crash for [email]"
    assert rec.envelope.items[1].payload == BINARY
    assert rec.envelope.items[1].headers["filename"] == "core.bin"
    totals = outcome_totals(state)
    assert totals[("forwarded", "none", "attachment")] == 1
    assert ("filtered", "unscannable", "attachment") not in totals
    assert received_total(state) == sum(totals.values()) == 2


async def test_text_attachment_arrives_scrubbed(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A text attachment is forwarded, scrubbed, with the rest of its bytes untouched."""
    client = await make_relay(rules="[secrets, pii]")
    text = b"10:22:33 login alice@example.com password=hunter2-pw\n10:22:34 ok\n"
    body = event_envelope(
        {"message": "see log"},
        ({"type": "attachment", "filename": "app.log", "content_type": "text/plain"}, text),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    [rec] = upstream.received
    assert [(i.type, i.payload) for i in rec.envelope.items] == [
        ("event", b'{"message":"see log"}'),
        ("attachment", b"10:22:33 login [email] password=[Filtered]\n10:22:34 ok\n"),
    ]
    assert rec.envelope.items[1].headers["length"] == len(rec.envelope.items[1].payload)
    totals = outcome_totals(state)
    assert totals[("forwarded", "none", "attachment")] == 1
    assert received_total(state) == sum(totals.values()) == 2


async def test_trace_header_user_removed_in_transit(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The envelope header's trace user id and segment are removed before forwarding."""
    client = await make_relay(rules="[secrets, pii]")
    body = envelope_bytes(
        {
            "event_id": EVENT_ID,
            "trace": {
                "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
                "public_key": KEY,
                "user_id": "42",
                "user_segment": "vip",
            },
        },
        ({"type": "event"}, b'{"message":"hi"}'),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    trace = upstream.received[0].envelope.headers["trace"]
    assert trace == {
        "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
        "public_key": UPSTREAM_KEY,
        "user_id": None,
        "user_segment": None,
    }


async def test_empty_rules_mean_no_scrubbing(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`rules: []` turns scrubbing off: items arrive unchanged, binary attachments included."""
    client = await make_relay(rules="[]")
    event = b'{"message":"mail alice@example.com","extra":{"password":"hunter2"}}'
    body = envelope_bytes(
        {"event_id": EVENT_ID},
        ({"type": "event"}, event),
        ({"type": "attachment", "filename": "core.bin"}, BINARY),
    )
    resp = await client.post(URL, data=body, headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert [(i.type, i.payload) for i in upstream.received[0].envelope.items] == [
        ("event", event),
        ("attachment", BINARY),
    ]


# -- per-project rules -----------------------------------------------------------------------------


async def test_project_rule_file_applies_only_to_its_project(
    make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A project's own rule file (by absolute path) scrubs its events; another project's are left to the defaults."""
    pack = tmp_path / "orders.yml"
    pack.write_text(
        "pack: orders\n"
        "description: Order numbers.\n"
        "rules:\n"
        "  - id: orders.number\n"
        "    description: Order numbers like ORD-123456.\n"
        "    pattern: 'ORD-\\d{6}'\n"
        "    with: '[order]'\n"
    )
    client = await make_relay(
        rules="[secrets, pii]",
        projects=projects_yaml(upstream.url, rules=f"[secrets, pii, {pack}]", second=True),
    )
    message = {"message": "order ORD-123456 for alice@example.com"}
    first = await client.post(URL, data=event_envelope(message), headers=auth_header())
    other_id = "0" * 31 + "1"
    second = await client.post(
        f"/api/{SECOND_PROJECT}/envelope/",
        data=event_envelope(message, event_id=other_id),
        headers=auth_header(THIRD_KEY),
    )
    assert (first.status, second.status) == (200, 200)
    await upstream.wait_for(2)
    by_path = {r.path: orjson.loads(r.envelope.items[0].payload) for r in upstream.received}
    assert by_path == {
        f"/api/{UPSTREAM_PROJECT}/envelope/": {
            "message": "order [order] for [email]",
            "_meta": {"message": {"": {"rem": [["orders.number", "s", 6, 13], ["pii.email", "s", 18, 25]], "len": 38}}},
        },
        f"/api/{UPSTREAM_PROJECT + 1}/envelope/": {
            "message": "order ORD-123456 for [email]",
            "_meta": {"message": {"": {"rem": [["pii.email", "s", 21, 28]], "len": 38}}},
        },
    }


# -- failing closed --------------------------------------------------------------------------------


async def test_slow_rule_fails_closed(make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path) -> None:
    """A rule too slow for `scrub.timeout` drops the item (invalid/scrub_failed); it is never forwarded."""
    pack = tmp_path / "slow.yml"
    # Quadratic in the `regex` module: harmless on short strings (the loader accepts it), seconds on 50 kB.
    pack.write_text("rules:\n  - id: slow.az\n    pattern: 'a.*z'\n")
    client = await make_relay(
        "scrub: {timeout: 10ms}", rules="[secrets, pii]", projects=projects_yaml(upstream.url, rules=f"[{pack}]")
    )
    slow = event_envelope({"message": "a" * 50_000})
    resp = await client.post(URL, data=slow, headers=auth_header())
    assert resp.status == 200
    fine_id = "0" * 31 + "2"
    resp = await client.post(URL, data=event_envelope({"message": "fine"}, event_id=fine_id), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    state = state_of(client)
    await settled(state)
    assert [r.envelope.event_id for r in upstream.received] == [fine_id]
    assert b"aaaaaaaaaa" not in b"".join(r.envelope.serialize() for r in upstream.received)
    totals = outcome_totals(state)
    assert totals[("invalid", "scrub_failed", "error")] == 1
    assert totals[("forwarded", "none", "error")] == 1
    assert received_total(state) == sum(totals.values()) == 2


class _FailingScrubber(Scrubber):
    """Raises on every event, as a timed-out or too-deep scrub would."""

    def __init__(self, error: Exception) -> None:
        super().__init__([*load_pack("pii").rules])
        self.error = error

    def scrub_event(self, event: dict[str, Any]) -> dict[str, Any]:
        raise self.error


class _Registry:
    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber

    def for_project(self, project: ProjectConfig | None) -> Scrubber:
        return self.scrubber

    def auditor_for(self, project: ProjectConfig | None) -> None:
        return None


def _context(envelope: Envelope, project: ProjectConfig | None = None) -> tuple[ProcessingContext, Metrics]:
    metrics = Metrics()
    ctx = ProcessingContext(envelope, PROJECT, project, KEY, None, Outcomes(metrics))  # type: ignore[arg-type]
    return ctx, metrics


def _totals(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    return outcome_totals(SimpleNamespace(metrics=metrics))  # type: ignore[arg-type]


async def test_stage_drops_item_on_scrub_error() -> None:
    """A ScrubError drops just that item with invalid/scrub_failed; the other items are scrubbed and kept."""
    envelope = Envelope(
        {"event_id": EVENT_ID},
        [
            Item({"type": "event"}, b'{"message":"alice@example.com"}'),
            Item({"type": "user_report"}, b'{"email":"alice@example.com"}'),
        ],
    )
    ctx, metrics = _context(envelope)
    await ScrubStage(_Registry(_FailingScrubber(ScrubError("scrubbing took longer than 0.25s")))).process(ctx)  # type: ignore[arg-type]
    assert [(i.type, i.payload) for i in envelope.items] == [("user_report", b'{"email":"[email]"}')]
    assert _totals(metrics) == {("invalid", "scrub_failed", "error"): 1.0}


async def test_stage_drops_item_when_scrubber_crashes() -> None:
    """An unexpected exception in the scrubber fails closed too: the item is dropped, never passed on raw."""
    envelope = Envelope({"event_id": EVENT_ID}, [Item({"type": "event"}, b'{"message":"alice@example.com"}')])
    ctx, metrics = _context(envelope)
    await ScrubStage(_Registry(_FailingScrubber(RuntimeError("bug")))).process(ctx)  # type: ignore[arg-type]
    assert envelope.items == []
    assert _totals(metrics) == {("invalid", "scrub_failed", "error"): 1.0}


async def test_stage_drops_too_deep_event() -> None:
    """An event nested deeper than the engine allows is dropped with invalid/scrub_failed."""
    nested: Any = "alice@example.com"
    for _ in range(200):
        nested = {"a": nested}
    envelope = Envelope({"event_id": EVENT_ID}, [Item({"type": "event"}, orjson.dumps({"extra": nested}))])
    ctx, metrics = _context(envelope)
    scrubber = Scrubber([*load_pack("secrets").rules, *load_pack("pii").rules])
    await ScrubStage(_Registry(scrubber)).process(ctx)  # type: ignore[arg-type]
    assert envelope.items == []
    assert _totals(metrics) == {("invalid", "scrub_failed", "error"): 1.0}


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"type": "replay_recording"}, ("invalid", "scrub_failed", "replay")),  # unreadable
        ({"type": "replay_video"}, ("filtered", "unscannable", "replay")),  # pixels, not opted in
    ],
)
async def test_replay_event_is_dropped_with_its_recording(body: dict[str, str], outcome: tuple[str, str, str]) -> None:
    """A replay event whose recording or video is dropped goes with it, with the same outcome (Sentry rejects a
    replay event alone); the error event beside them is kept."""
    registry = ScrubberRegistry(Config(rules=("pii",)))  # a real one: recordings are scrubbed in the child
    envelope = Envelope(
        {"event_id": EVENT_ID},
        [
            Item({"type": "event"}, b'{"message":"hi"}'),
            Item({"type": "replay_event"}, b'{"replay_id":"' + EVENT_ID.encode() + b'","type":"replay_event"}'),
            Item(body, b"\x78\x9c\x03\x00"),
        ],
    )
    ctx, metrics = _context(envelope, ProjectConfig(id=PROJECT, keys=(KEY,)))
    stage = ScrubStage(registry)
    try:
        await stage.process(ctx)
    finally:
        stage.close()
    assert [i.type for i in envelope.items] == ["event"]
    assert _totals(metrics) == {outcome: 2.0}


async def test_stage_unscannable_kept_for_opted_in_project() -> None:
    """The stage drops unscannable items unless the project has `forward_unscannable`."""
    scrubber = Scrubber([*load_pack("pii").rules])
    for forward, expected_types, expected_totals in (
        (False, ["event"], {("filtered", "unscannable", "replay"): 1.0}),
        (True, ["event", "replay_video"], {}),
    ):
        envelope = Envelope(
            {"event_id": EVENT_ID},
            [Item({"type": "event"}, b'{"message":"hi"}'), Item({"type": "replay_video"}, b"\x00\x00ftypmp42")],
        )
        project = ProjectConfig(id=PROJECT, keys=(KEY,), forward_unscannable=forward)
        ctx, metrics = _context(envelope, project)
        await ScrubStage(_Registry(scrubber)).process(ctx)  # type: ignore[arg-type]
        assert [i.type for i in envelope.items] == expected_types
        assert _totals(metrics) == expected_totals


async def test_small_replay_recordings_are_scrubbed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay recording of a few KB (a MB of rrweb JSON inside) goes to the scrubbing child, never the loop."""
    from . import rrweb

    offloaded: list[list[str]] = []
    real = ScrubStage._offload

    async def spy(self: ScrubStage, ctx: ProcessingContext, registry: Any, report: Any) -> Any:
        offloaded.append([item.type for item in ctx.envelope.items])
        return await real(self, ctx, registry, report)

    monkeypatch.setattr(ScrubStage, "_offload", spy)
    recording = rrweb.recording(rrweb.segment("hello jane@example.com", "x", "https://shop.example/"))
    assert len(recording) < 2048
    envelope = Envelope({"event_id": EVENT_ID}, [Item({"type": "replay_recording"}, recording)])
    ctx, _ = _context(envelope, ProjectConfig(id=PROJECT, keys=(KEY,)))
    stage = ScrubStage(ScrubberRegistry(Config(rules=("pii",))))
    try:
        await stage.process(ctx)
    finally:
        stage.close()
    assert offloaded == [["replay_recording"]]
    assert len(envelope.items) == 1
    assert b"jane@example.com" not in orjson.dumps(rrweb.events_of(envelope.items[0].payload))
