"""Envelope and item headers: every field but the structural ones goes through the rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.config import parse_config
from relay.envelope import Envelope, Item, parse_envelope
from relay.rules import load_pack
from relay.scrub.audit import ScrubReport
from relay.scrub.engine import Scrubber, ScrubError
from relay.scrub.headers import scrub_envelope_headers, scrub_item_headers
from relay.scrub.items import Verdict, scrub_envelope, scrub_item
from relay.scrub.offload import Job, scrub_job
from relay.scrub.registry import ScrubberRegistry

SHIPPED = [*load_pack("secrets").rules, *load_pack("pii").rules]
EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"


def scrubber() -> Scrubber:
    """The shipped `secrets` and `pii` packs."""
    return Scrubber(SHIPPED, b"test-hash-key", 5.0)


def test_envelope_header_scrubbed_except_structure() -> None:
    """Custom fields, `sdk` and the trace context are scanned; event_id, dsn and sent_at are kept as sent."""
    envelope = Envelope(
        {
            "event_id": EVENT_ID,
            "dsn": "https://0123456789abcdef0123456789abcdef@relay.example.com/42",
            "sent_at": "2024-03-15T10:22:33.123456Z",
            "sdk": {"name": "sentry.python", "version": "2.1.0", "integrations": ["alice@example.com"]},
            "trace": {"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377", "user_id": "42", "transaction": "/u/bob@x.org"},
            "x_user": "alice@example.com",
            "api_token": "abc123",
        },
        [],
    )
    report = ScrubReport()
    scrub_envelope_headers(envelope, scrubber(), report)
    assert envelope.headers == {
        "event_id": EVENT_ID,
        "dsn": "https://0123456789abcdef0123456789abcdef@relay.example.com/42",
        "sent_at": "2024-03-15T10:22:33.123456Z",
        "sdk": {"name": "sentry.python", "version": "2.1.0", "integrations": ["[email]"]},
        "trace": {"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377", "user_id": None, "transaction": "/u/[email]"},
        "x_user": "[email]",
        "api_token": "[Filtered]",
    }
    assert {(r.item_type, r.path, r.rule) for r in report.enforced} == {
        ("envelope", "envelope.sdk.integrations.0", "pii.email"),
        ("envelope", "envelope.trace.user_id", "pii.trace_user"),
        ("envelope", "envelope.trace.transaction", "pii.email"),
        ("envelope", "envelope.x_user", "pii.email"),
        ("envelope", "envelope.api_token", "secrets.sensitive_keys"),
    }


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("event_id", "alice@example.com", "[email]"),
        ("sent_at", "2024-03-15 alice@example.com", "2024-03-15 [email]"),
        ("sent_at", 4111111111111111, "[creditcard]"),
    ],
)
def test_structural_fields_that_are_not_their_shape_are_scanned(key: str, value: Any, expected: Any) -> None:
    """A structural field is left alone only while it has its shape (a UUID, a timestamp)."""
    envelope = Envelope({key: value}, [])
    scrub_envelope_headers(envelope, scrubber())
    assert envelope.headers == {key: expected}


def test_item_header_filename_and_custom_fields_scrubbed() -> None:
    """An attachment's filename and custom fields are scanned; type, length and ordinary values are kept."""
    it = Item(
        {
            "type": "attachment",
            "length": 2,
            "filename": "/Users/alice/Desktop/for alice@example.com - notes.txt",
            "content_type": "text/plain",
            "attachment_type": "event.attachment",
            "x_owner": {"email": "alice@example.com", "card": 4111111111111111},
        },
        b"ok",
    )
    report = ScrubReport()
    assert scrub_item(it, scrubber(), report) is Verdict.SCRUBBED
    assert it.headers == {
        "type": "attachment",
        "length": 2,
        "filename": "/Users/[user]/Desktop/for [email] - notes.txt",
        "content_type": "text/plain",
        "attachment_type": "event.attachment",
        "x_owner": {"email": "[email]", "card": "[creditcard]"},
    }
    assert {(r.item_type, r.path) for r in report.enforced} == {
        ("attachment", "item.filename"),
        ("attachment", "item.x_owner.email"),
        ("attachment", "item.x_owner.card"),
    }


def test_headers_of_unscannable_items_are_scrubbed_too() -> None:
    """A minidump's payload can't be scanned, but its header (forwarded with it) is."""
    it = Item({"type": "attachment", "attachment_type": "event.minidump", "filename": "/home/bob/core.dmp"}, b"MDMP")
    assert scrub_item(it, scrubber()) is Verdict.UNSCANNABLE
    assert it.headers["filename"] == "/home/[user]/core.dmp"


@pytest.mark.parametrize("kind", ["alice@example.com", "Event", "x4012888888881881", "", "event-v2", "_x", 7, None])
def test_item_type_must_be_a_name(kind: Any) -> None:
    """An item type that isn't a snake_case name can't be forwarded, logged or counted: the item fails."""
    with pytest.raises(ScrubError, match=r"^item type is not a snake_case name$"):
        scrub_item(Item({"type": kind}, b"{}"), scrubber())


@pytest.mark.parametrize("kind", ["profile_chunk", "trace_metric", "future_v2_1234567"])
def test_item_types_that_are_names_pass(kind: str) -> None:
    """Snake_case names, digits included (up to 8), are item types."""
    assert scrub_item(Item({"type": kind}, b"{}"), scrubber()) is Verdict.SCRUBBED


def test_bad_item_type_logged_as_placeholder(caplog: pytest.LogCaptureFixture) -> None:
    """The failure is logged without the type itself (it is the client's text)."""
    envelope = Envelope({}, [Item({"type": "alice@example.com"}, b"{}")])
    failed, _ = scrub_envelope(envelope, False, scrubber())
    assert failed == envelope.items
    [record] = caplog.records
    assert (record.getMessage(), record.__dict__["item_type"]) == ("scrub failed, item dropped", "(invalid)")


def test_lengths_match_scrubbed_payloads_on_the_wire() -> None:
    """After scrubbing, every item's `length` is its new payload's: the envelope parses back to the same items."""
    envelope = Envelope(
        {"event_id": EVENT_ID, "x": "alice@example.com"},
        [
            Item({"type": "attachment", "length": 36, "filename": "a.txt"}, b"contact alice.long.name@example.com\n"),
            Item({"type": "event", "length": 99}, orjson.dumps({"message": "mail alice@example.com"})),
        ],
    )
    failed, unscannable = scrub_envelope(envelope, False, scrubber())
    assert (failed, unscannable) == ([], [])
    parsed = parse_envelope(envelope.serialize())
    assert parsed.headers == {"event_id": EVENT_ID, "x": "[email]"}
    assert [(i.headers, i.payload) for i in parsed.items] == [(i.headers, i.payload) for i in envelope.items]
    assert parsed.items[0].payload == b"contact [email]\n"
    assert parsed.items[0].headers["length"] == len(b"contact [email]\n")


def test_large_envelope_child_scrubs_the_whole_header() -> None:
    """The large-envelope path (the child's job) scrubs the envelope header as the in-process path does."""
    config = parse_config("rules: [secrets, pii]\nprojects: [{id: 42, keys: [k]}]\n", "relay.yml", {})
    registry = ScrubberRegistry(config)
    headers = {"event_id": EVENT_ID, "trace": {"user_id": "1"}, "x": "alice@example.com"}
    items = [Item({"type": "event", "note": "bob@example.com"}, b'{"message":"hi"}')]
    result = scrub_job(Job(config, registry.texts(), 0, 42, items, headers, False, False))
    assert result.headers == {"event_id": EVENT_ID, "trace": {"user_id": None}, "x": "[email]"}
    assert result.items[0].headers == {"type": "event", "note": "[email]"}


def test_item_header_without_extra_fields_untouched() -> None:
    """Only `type` and `length`: nothing to scan."""
    it = Item({"type": "event", "length": 2}, b"{}")
    scrub_item_headers(it, scrubber())
    assert it.headers == {"type": "event", "length": 2}
