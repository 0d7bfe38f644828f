"""Scrubbing per envelope item type: events with `_meta`, JSON items at their root, text, and what can't be scanned."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from relay.envelope import Envelope, Item
from relay.rules import load_pack
from relay.scrub import replay
from relay.scrub.audit import ScrubReport
from relay.scrub.engine import Scrubber, ScrubError
from relay.scrub.items import Verdict, scrub_envelope_headers, scrub_item

from . import rrweb

SHIPPED = [*load_pack("secrets").rules, *load_pack("pii").rules]


def scrubber() -> Scrubber:
    """The shipped `secrets` and `pii` packs."""
    return Scrubber(SHIPPED, b"test-hash-key", 5.0)


def item(headers: dict[str, Any], payload: Any) -> Item:
    """An item with a JSON (dict/list) or raw bytes payload."""
    return Item(dict(headers), payload if isinstance(payload, bytes) else orjson.dumps(payload))


def scrubbed(headers: dict[str, Any], payload: Any) -> tuple[Verdict, Item]:
    """Scrub one item with the shipped packs."""
    it = item(headers, payload)
    return scrub_item(it, scrubber()), it


# -- events ----------------------------------------------------------------------------------


def test_event_scrubbed_with_meta() -> None:
    """An event is scrubbed from its root and records `_meta`."""
    verdict, it = scrubbed({"type": "event"}, {"message": "mail alice@example.com", "level": "error"})
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "message": "mail [email]",
        "level": "error",
        "_meta": {"message": {"": {"rem": [["pii.email", "s", 5, 12]], "len": 22}}},
    }


def test_transaction_scrubbed_with_meta_merged() -> None:
    """A transaction's spans are scrubbed; `_meta` the SDK sent is kept and extended."""
    sdk_meta = {"extra": {"": {"rem": [["!limit", "s"]], "len": 9000}}}
    verdict, it = scrubbed(
        {"type": "transaction"},
        {
            "type": "transaction",
            "transaction": "/checkout",
            "spans": [{"span_id": "9af0571ca31e416a", "description": "GET /u?email=bob@example.com"}],
            "extra": {},
            "_meta": sdk_meta,
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "type": "transaction",
        "transaction": "/checkout",
        "spans": [{"span_id": "9af0571ca31e416a", "description": "GET /u?email=[email]"}],
        "extra": {},
        "_meta": {
            "extra": {"": {"rem": [["!limit", "s"]], "len": 9000}},
            "spans": {"0": {"description": {"": {"rem": [["pii.email", "s", 13, 20]], "len": 28}}}},
        },
    }


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        (
            "feedback",
            {"contexts": {"feedback": {"message": "ring +44 20 7946 0958", "contact_email": "alice@example.com"}}},
            {
                # the contact address stays (so someone can answer): pii.feedback_contact
                "contexts": {"feedback": {"message": "ring [phone]", "contact_email": "alice@example.com"}},
                "_meta": {"contexts": {"feedback": {"message": {"": {"rem": [["pii.phone", "s", 5, 12]], "len": 21}}}}},
            },
        ),
        (
            "replay_event",
            {"type": "replay_event", "urls": ["https://shop.example.com/?email=alice@example.com"]},
            {
                "type": "replay_event",
                "urls": ["https://shop.example.com/?email=[email]"],
                "_meta": {"urls": {"0": {"": {"rem": [["pii.email", "s", 32, 39]], "len": 49}}}},
            },
        ),
    ],
)
def test_other_event_types_scrubbed_with_meta(kind: str, payload: dict[str, Any], expected: dict[str, Any]) -> None:
    """Feedback and replay events are events too: scrubbed from the root with `_meta`."""
    verdict, it = scrubbed({"type": kind}, payload)
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == expected


def test_incoming_meta_loses_original_values() -> None:
    """`_meta` sent with an event keeps lengths, remarks and error kinds, never `val` or error data."""
    incoming = {
        "message": {
            "": {
                "val": "mail alice@example.com",
                "len": 22,
                "rem": [["!limit", "s"], ["alice@example.com", "x"], ["@password:filter", "s", 0, 10], "junk"],
                "err": [["invalid_data", {"value": "alice@example.com"}], "value_too_long", {"x": 1}],
            }
        },
        "user": {"": {"val": {"email": "alice@example.com"}}},
    }
    verdict, it = scrubbed({"type": "event"}, {"message": "hello", "_meta": incoming})
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "message": "hello",
        "_meta": {
            "message": {
                "": {
                    "len": 22,
                    "rem": [["!limit", "s"], ["@password:filter", "s", 0, 10]],
                    "err": ["invalid_data", "value_too_long"],
                }
            }
        },
    }


def test_incoming_meta_only_for_paths_the_event_has() -> None:
    """`_meta` nodes for paths the event doesn't have (keys anyone could write) are dropped; the rest merge."""
    incoming = {
        "alice@example.com": {"": {"len": 1}},
        "extra": {"0": {"": {"len": 2}}, "note": {"": {"len": 30}}},
        "tags": {"5": {"": {"len": 3}}, "0": {"": {"len": 4}}},
    }
    event = {"extra": {"note": "write to bob@example.com"}, "tags": [["a", "b"]], "_meta": incoming}
    verdict, it = scrubbed({"type": "event"}, event)
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload)["_meta"] == {
        "extra": {"note": {"": {"len": 30, "rem": [["pii.email", "s", 9, 16]]}}},
        "tags": {"0": {"": {"len": 4}}},
    }


@pytest.mark.parametrize(
    "meta", [None, "alice@example.com", [1, 2], {"": 5}, {"": {"rem": 5, "err": "x", "len": True}}]
)
def test_malformed_incoming_meta_is_dropped(meta: Any) -> None:
    """Incoming `_meta` that isn't Sentry's shape is dropped without failing the event."""
    verdict, it = scrubbed({"type": "event"}, {"message": "hello", "_meta": meta})
    assert (verdict, orjson.loads(it.payload)) == (Verdict.SCRUBBED, {"message": "hello"})


def test_mechanism_description_and_data_scrubbed() -> None:
    """An exception mechanism's description, data and help link are scanned; its type and flags are kept."""
    mechanism = {
        "type": "celery",
        "handled": False,
        "synthetic": True,
        "exception_id": 1,
        "parent_id": 0,
        "source": "__context__",
        "is_exception_group": False,
        "meta": {"signal": {"number": 11, "name": "SIGSEGV"}, "errno": {"number": 4111111111111111}},
        "description": "task for alice@example.com",
        "data": {"to": "alice@example.com", "card": "4111 1111 1111 1111"},
        "help_link": "https://docs.example.com/?u=alice@example.com",
    }
    verdict, it = scrubbed({"type": "event"}, {"exception": {"values": [{"type": "E", "mechanism": mechanism}]}})
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload)["exception"]["values"][0]["mechanism"] == {
        **mechanism,
        "description": "task for [email]",
        "data": {"to": "[email]", "card": "[creditcard]"},
        "help_link": "https://docs.example.com/?u=[email]",
    }


def test_debug_meta_paths_lose_user_names() -> None:
    """Debug image paths lose home directory user names; addresses, ids and arch are kept."""
    image = {
        "type": "macho",
        "arch": "arm64",
        "image_addr": "0x100000000",
        "image_size": 4111111111111111,
        "debug_id": "550e8400-e29b-41d4-a716-446655440000",
        "code_id": "4111111111111111",
        "code_file": "/Users/alice/Library/App.app/App",
        "debug_file": "C:\\Users\\alice\\app.pdb",
    }
    verdict, it = scrubbed({"type": "event"}, {"debug_meta": {"images": [image]}})
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload)["debug_meta"]["images"][0] == {
        **image,
        "code_file": "/Users/[user]/Library/App.app/App",
        "debug_file": "C:\\Users\\[user]\\app.pdb",
    }


def test_event_that_is_not_json_fails() -> None:
    """An event payload that is not JSON can't be scrubbed: ScrubError (the stage drops it)."""
    with pytest.raises(ScrubError, match=r"^event payload is not valid JSON"):
        scrubbed({"type": "event"}, b"{not json")


def test_event_that_is_not_an_object_fails() -> None:
    """An event payload that is JSON but not an object fails."""
    with pytest.raises(ScrubError, match=r"^event payload is not a JSON object$"):
        scrubbed({"type": "event"}, b'["alice@example.com"]')


def test_empty_payload_passes() -> None:
    """An empty payload has nothing to scrub."""
    verdict, it = scrubbed({"type": "event"}, b"")
    assert (verdict, it.payload) == (Verdict.SCRUBBED, b"")


# -- other JSON items --------------------------------------------------------------------------


def test_session_ip_address_removed() -> None:
    """A session keeps its fields; only `attrs.ip_address` is removed."""
    verdict, it = scrubbed(
        {"type": "session"},
        {
            "sid": "7c7b6e2f6b2d4a6c9a6b7c8d9e0f1a2b",
            "did": "42",
            "status": "ok",
            "init": True,
            "started": "2024-03-15T10:22:33Z",
            "attrs": {"ip_address": "203.0.113.9", "release": "shop@1.2.3", "environment": "prod"},
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "sid": "7c7b6e2f6b2d4a6c9a6b7c8d9e0f1a2b",
        "did": "42",
        "status": "ok",
        "init": True,
        "started": "2024-03-15T10:22:33Z",
        "attrs": {"ip_address": None, "release": "shop@1.2.3", "environment": "prod"},
    }


def test_sessions_aggregate_ip_address_removed() -> None:
    """Aggregated sessions lose `attrs.ip_address` and keep their counts."""
    verdict, it = scrubbed(
        {"type": "sessions"},
        {
            "aggregates": [{"started": "2024-03-15T10:00:00Z", "exited": 3}],
            "attrs": {"ip_address": "203.0.113.9", "release": "shop@1.2.3"},
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "aggregates": [{"started": "2024-03-15T10:00:00Z", "exited": 3}],
        "attrs": {"ip_address": None, "release": "shop@1.2.3"},
    }


def test_user_report_email_name_and_comments() -> None:
    """A user report has personal data in its email, name and comments scrubbed; its event id kept."""
    verdict, it = scrubbed(
        {"type": "user_report"},
        {
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "email": "alice@example.com",
            "name": "Alice <alice@example.com>",
            "comments": "call me at +44 20 7946 0958 or write to alice.w@example.org",
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "email": "[email]",
        "name": "Alice <[email]>",
        "comments": "call me at [phone] or write to [email]",
    }


def test_log_body_and_attributes() -> None:
    """Log bodies are scrubbed; attributes keep their `{type, value}` shape with the value scrubbed."""
    verdict, it = scrubbed(
        {"type": "log"},
        {
            "items": [
                {
                    "timestamp": 1710498153.5,
                    "level": "info",
                    "body": "login alice@example.com password=hunter2-pw",
                    "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
                    "attributes": {
                        "user.email": {"type": "string", "value": "bob@example.com"},
                        "password": {"type": "string", "value": "hunter2-pw"},
                        "sentry.release": {"type": "string", "value": "shop@1.2.3"},
                    },
                }
            ]
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "items": [
            {
                "timestamp": 1710498153.5,
                "level": "info",
                "body": "login [email] password=[Filtered]",
                "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
                "attributes": {
                    "user.email": {"type": "string", "value": "[email]"},
                    "password": {"type": "string", "value": "[Filtered]"},
                    "sentry.release": {"type": "string", "value": "shop@1.2.3"},
                },
            }
        ]
    }


def test_log_body_scrubbed() -> None:
    """A log body and string attribute values are scrubbed in place."""
    verdict, it = scrubbed(
        {"type": "log"},
        {
            "items": [
                {
                    "level": "info",
                    "body": "mail to alice@example.com",
                    "attributes": {"to": {"type": "string", "value": "+44 20 7946 0958"}},
                }
            ]
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "items": [
            {"level": "info", "body": "mail to [email]", "attributes": {"to": {"type": "string", "value": "[phone]"}}}
        ]
    }


def test_otel_log_uses_the_log_root() -> None:
    """`otel_log` items are scrubbed like logs."""
    verdict, it = scrubbed({"type": "otel_log"}, {"body": "from alice@example.com"})
    assert (verdict, orjson.loads(it.payload)) == (Verdict.SCRUBBED, {"body": "from [email]"})


def test_span_data() -> None:
    """A span's data has tokens and emails scrubbed; its ids kept."""
    verdict, it = scrubbed(
        {"type": "span"},
        {
            "span_id": "9af0571ca31e416a",
            "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
            "data": {
                "http.url": "https://api.example.com/v1?token=abcdef123&q=1",
                "db.statement": "select * from users where email='carol@example.com'",
            },
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "span_id": "9af0571ca31e416a",
        "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
        "data": {
            "http.url": "https://api.example.com/v1?token=[Filtered]&q=1",
            "db.statement": "select * from users where email=%s",
        },
    }


def test_check_in() -> None:
    """A check-in keeps its monitor fields; personal data in it is scrubbed."""
    verdict, it = scrubbed(
        {"type": "check_in"},
        {
            "check_in_id": "83a7c0a3e5f84a8e9d1c2b3a4f5e6d7c",
            "monitor_slug": "nightly-billing",
            "status": "error",
            "duration": 12.5,
            "environment": "prod",
            "contexts": {"trace": {"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377"}},
            "monitor_config": {"owner": "ops alice@example.com"},
        },
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "check_in_id": "83a7c0a3e5f84a8e9d1c2b3a4f5e6d7c",
        "monitor_slug": "nightly-billing",
        "status": "error",
        "duration": 12.5,
        "environment": "prod",
        "contexts": {"trace": {"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377"}},
        "monitor_config": {"owner": "ops [email]"},
    }


def test_valid_client_report_untouched() -> None:
    """A client report with only the schema's fields is passed through byte for byte."""
    payload = (
        b'{"timestamp":"2024-03-15T10:22:33.5Z","discarded_events":[{"reason":"before_send","category":"error",'
        b'"quantity":1}],"rate_limited_events":[],"filtered_events":[{"reason":"release-version","category":'
        b'"transaction","quantity":2}],"filtered_sampling_events":[{"reason":"Sampled:3,4","category":"span",'
        b'"quantity":4294967295}]}'
    )
    verdict, it = scrubbed({"type": "client_report"}, payload)
    assert (verdict, it.payload) == (Verdict.SCRUBBED, payload)


def test_client_report_keeps_only_its_schema() -> None:
    """Unknown fields, bad entries and entry extras are dropped, and each kind of drop is reported."""
    report = ScrubReport()
    it = item(
        {"type": "client_report"},
        {
            "timestamp": "yesterday alice@example.com",
            "note": "alice@example.com",
            "discarded_events": [
                {"reason": "sample_rate", "category": "error", "quantity": 3, "user": "alice@example.com"},
                {"reason": "alice@example.com", "category": "error", "quantity": 1},
                {"reason": "x4111 1111 1111 1111", "category": "error", "quantity": 1},
                {"reason": "queue_overflow", "category": "error", "quantity": -1},
                {"reason": "queue_overflow", "category": "error", "quantity": True},
                {"reason": "queue_overflow", "category": "error", "quantity": 2**32},
                "alice@example.com",
            ],
            "rate_limited_events": {"reason": "x"},
        },
    )
    assert scrub_item(it, scrubber(), report) is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {
        "discarded_events": [{"reason": "sample_rate", "category": "error", "quantity": 3}],
    }
    assert [(r.path, r.rule, r.action) for r in report.enforced] == [
        ("timestamp", "client_report.schema", "remove"),
        ("(unknown field)", "client_report.schema", "remove"),
        ("discarded_events", "client_report.schema", "remove"),
        ("rate_limited_events", "client_report.schema", "remove"),
    ]


def test_client_report_that_is_not_an_object_fails() -> None:
    """A client report that is not a JSON object can't be checked: ScrubError (the stage drops it)."""
    with pytest.raises(ScrubError, match=r"^client_report payload is not a JSON object$"):
        scrubbed({"type": "client_report"}, b'["alice@example.com"]')


# -- attachments ----------------------------------------------------------------------------------


def test_text_attachment_scrubbed_as_text() -> None:
    """A text/plain attachment is scrubbed as one string; everything else in it is kept byte for byte."""
    text = b"2024-03-15 10:22:33 user alice@example.com logged in with password=hunter2-pw\nok\n"
    verdict, it = scrubbed({"type": "attachment", "content_type": "text/plain", "filename": "app.txt"}, text)
    assert verdict is Verdict.SCRUBBED
    assert it.payload == b"2024-03-15 10:22:33 user [email] logged in with password=[Filtered]\nok\n"


def test_text_attachment_recognized_by_file_name() -> None:
    """An attachment named *.log is text even without a content type."""
    verdict, it = scrubbed({"type": "attachment", "filename": "server.log"}, b"card 4111 1111 1111 1111\n")
    assert (verdict, it.payload) == (Verdict.SCRUBBED, b"card [creditcard]\n")


def test_json_attachment_scrubbed_as_json() -> None:
    """A JSON attachment is scrubbed as JSON: key rules apply to its keys."""
    verdict, it = scrubbed(
        {"type": "attachment", "content_type": "application/json", "filename": "state.json"},
        b'{"user": {"email": "alice@example.com"}, "password": "hunter2", "count": 3}',
    )
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {"user": {"email": "[email]"}, "password": "[Filtered]", "count": 3}


def test_broken_json_attachment_scrubbed_as_text() -> None:
    """A `.json` attachment that is not JSON after all is scrubbed as text."""
    verdict, it = scrubbed(
        {"type": "attachment", "content_type": "application/json"}, b'{"to": "alice@example.com", oops'
    )
    assert (verdict, it.payload) == (Verdict.SCRUBBED, b'{"to": "[email]", oops')


@pytest.mark.parametrize(
    "headers",
    [
        {"type": "attachment", "content_type": "application/octet-stream", "filename": "dump.bin"},
        {"type": "attachment", "filename": "photo.png", "content_type": "image/png"},
        {"type": "attachment", "attachment_type": "event.minidump", "filename": "crash.dmp"},
        {"type": "attachment", "attachment_type": "event.view_hierarchy", "filename": "view.json"},
        {
            "type": "attachment",
            "content_type": "text/plain",
            "filename": "latin1.txt",
            "_payload": b"caf\xe9 alice@example.com",
        },
    ],
)
def test_binary_attachments_are_unscannable(headers: dict[str, Any]) -> None:
    """Binary attachments, minidumps, other attachment types and undecodable text can't be scanned: left as they are."""
    headers = dict(headers)
    payload = headers.pop("_payload", b"\x00\x01MDMP alice@example.com\xff")
    verdict, it = scrubbed(headers, payload)
    assert (verdict, it.payload) == (Verdict.UNSCANNABLE, payload)


def test_replay_videos_are_unscannable() -> None:
    """A mobile replay's video is pixels: unscannable."""
    payload = b"\x00\x00\x00\x18ftypmp42 video"
    verdict, it = scrubbed({"type": "replay_video"}, payload)
    assert (verdict, it.payload) == (Verdict.UNSCANNABLE, payload)


@pytest.mark.parametrize("compressed", [True, False])
def test_replay_recording_is_scrubbed_as_rrweb_json(compressed: bool) -> None:
    """A recording (zlib-compressed or plain rrweb JSON) is scrubbed everywhere the page put data: text nodes,
    attribute and input values, URLs and console crumbs; it goes out compressed with its header line."""
    events = rrweb.segment(
        "Welcome back, call us at +1 415 555 0100",
        "jane.doe@example.com",
        "https://shop.example/?email=jane.doe%40example.com",
    )
    verdict, it = scrubbed({"type": "replay_recording"}, rrweb.recording(events, compressed, segment_id=3))
    assert verdict is Verdict.SCRUBBED
    assert it.payload.startswith(b'{"segment_id":3}\n\x78')  # zlib, as Relay sends it
    out = rrweb.events_of(it.payload)
    wire = orjson.dumps(out)
    assert b"jane.doe" not in wire and b"555 0100" not in wire
    assert [e["type"] for e in out] == [4, 2, 3, 5]  # structure kept
    html = out[1]["data"]["node"]["childNodes"][0]
    assert html["tagName"] == "html" and html["childNodes"][1]["attributes"]["type"] == "email"
    assert html["childNodes"][0]["textContent"].startswith("Welcome back, call us at ")
    assert out[3]["data"]["payload"]["message"] == "signed in as [email]"


def test_real_sdk_replay_recording_is_scrubbed() -> None:
    """A segment exactly as @sentry/browser 11.17.0 sent it (unmasked; see tests/e2e/data): every planted value
    goes, in URLs, text nodes, links, keystrokes and console crumbs, and the rrweb events keep their shape."""
    payload = (Path(__file__).parents[1] / "e2e" / "data" / "replay_recording_sdk.bin").read_bytes()
    before = rrweb.events_of(payload)
    verdict, it = scrubbed({"type": "replay_recording"}, payload)
    assert verdict is Verdict.SCRUBBED
    after = rrweb.events_of(it.payload)
    wire = orjson.dumps(after)
    for planted in (b"jane.doe", b"john.roe", b"jd.typed", b"7946", b"jd.t"):
        assert planted not in wire, planted
    assert [(e["type"], e.get("data", {}).get("source")) for e in after] == [
        (e["type"], e.get("data", {}).get("source")) for e in before
    ]


def test_replay_keystrokes_towards_a_redacted_value_are_masked() -> None:
    """rrweb records a field once per keystroke: the prefixes of a typed e-mail address or card number (no
    match on their own) go with the value they became; another field's keystrokes stay."""
    events = [
        *rrweb.typing(24, "jd.typed@example.com"),
        *rrweb.typing(25, "4111 1111 1111 1111"),
        *rrweb.typing(26, "blue"),
    ]
    verdict, it = scrubbed({"type": "replay_recording"}, rrweb.recording(events))
    assert verdict is Verdict.SCRUBBED
    texts: dict[int, list[str]] = {}
    for event in rrweb.events_of(it.payload):
        texts.setdefault(event["data"]["id"], []).append(event["data"]["text"])
    assert set(texts[24]) == {"[email]"}
    assert "4111" not in "".join(texts[25]) and len(texts[25]) == 19
    assert texts[26] == ["b", "bl", "blu", "blue"]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"segment_id":0}',  # no body
        b'{"segment_id":0}\n',
        b"not json\n[]",
        b'{"segment_id":0}\n\x78\x9c\x03\x00',  # truncated zlib
        b'{"segment_id":0}\nnot zlib, not json',
        b'{"segment_id":0}\n' + zlib.compress(b"{not json"),
    ],
)
def test_unreadable_replay_recording_fails_closed(payload: bytes) -> None:
    """A recording that can't be read raises ScrubError: it is dropped, never forwarded as it came."""
    with pytest.raises(ScrubError):
        scrubbed({"type": "replay_recording"}, payload)


def test_replay_recording_over_the_uncompressed_bound_fails_closed() -> None:
    """A small compressed recording that expands past the bound is refused before it is parsed."""
    bomb = b'{"segment_id":0}\n' + zlib.compress(b"[" + b" " * (replay.MAX_UNCOMPRESSED + 10) + b"]", 9)
    assert len(bomb) < 200_000
    with pytest.raises(ScrubError, match="uncompressed"):
        scrubbed({"type": "replay_recording"}, bomb)


# -- unknown item types ---------------------------------------------------------------------------


def test_unknown_json_item_scrubbed() -> None:
    """An unknown item type holding JSON is scrubbed as JSON (rooted at its type)."""
    verdict, it = scrubbed({"type": "future_thing"}, {"contact": "alice@example.com", "api_key": "k-123456", "n": 1})
    assert verdict is Verdict.SCRUBBED
    assert orjson.loads(it.payload) == {"contact": "[email]", "api_key": "[Filtered]", "n": 1}


def test_unknown_text_item_scrubbed() -> None:
    """An unknown item type holding UTF-8 text is scrubbed as text."""
    verdict, it = scrubbed({"type": "future_text"}, b"hello alice@example.com")
    assert (verdict, it.payload) == (Verdict.SCRUBBED, b"hello [email]")


def test_unknown_binary_item_unscannable() -> None:
    """An unknown item type holding binary data is unscannable."""
    payload = b"\xff\xfe\x00alice@example.com"
    verdict, it = scrubbed({"type": "future_bin"}, payload)
    assert (verdict, it.payload) == (Verdict.UNSCANNABLE, payload)


# -- envelope header ------------------------------------------------------------------------------


def test_trace_header_user_removed() -> None:
    """The envelope header's trace context loses `user_id` and `user_segment`; the rest is kept."""
    envelope = Envelope(
        {
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "trace": {
                "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
                "public_key": "0123456789abcdef0123456789abcdef",
                "user_id": "42",
                "user_segment": "vip",
                "release": "shop@1.2.3",
                "environment": "prod",
                "sample_rate": "1",
            },
        },
        [],
    )
    scrub_envelope_headers(envelope, scrubber())
    assert envelope.headers == {
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "trace": {
            "trace_id": "fb5cd9fddf8a465a8b0d054660cd6377",
            "public_key": "0123456789abcdef0123456789abcdef",
            "user_id": None,
            "user_segment": None,
            "release": "shop@1.2.3",
            "environment": "prod",
            "sample_rate": "1",
        },
    }


def test_user_id_outside_the_trace_header_is_kept() -> None:
    """`pii.trace_user` applies to the trace header only: an event's `user.id`-like keys stay."""
    verdict, it = scrubbed({"type": "event"}, {"extra": {"user_id": "42"}, "user": {"id": "42"}})
    assert (verdict, orjson.loads(it.payload)) == (Verdict.SCRUBBED, {"extra": {"user_id": "42"}, "user": {"id": "42"}})


def test_envelope_without_trace_header_unchanged() -> None:
    """No trace header: nothing to do."""
    envelope = Envelope({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}, [])
    scrub_envelope_headers(envelope, scrubber())
    assert envelope.headers == {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}


def test_container_span_sql_mask_is_remarked_in_its_meta() -> None:
    """A v2 span's SQL literal is masked and remarked in that span's own `_meta` (name), like any redaction."""
    payload = {
        "items": [
            {
                "name": "SELECT * FROM users WHERE email = 'x@example.com'",
                "attributes": {"sentry.op": {"type": "string", "value": "db"}},
            }
        ]
    }
    headers = {"type": "span", "item_count": 1, "content_type": "application/vnd.sentry.items.span.v2+json"}
    verdict, it = scrubbed(headers, payload)
    assert verdict is Verdict.SCRUBBED
    (span,) = orjson.loads(it.payload)["items"]
    assert span["name"] == "SELECT * FROM users WHERE email = %s"
    assert span["_meta"]["name"][""]["rem"][0][0] == "pii.sql_literals"
