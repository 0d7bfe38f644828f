"""Unit tests for the envelope wire format: parsing, errors and serialization."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.envelope import Envelope, Item, category_of, parse_envelope
from relay.errors import EnvelopeError

EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"

# (item type, payload) as SDKs send them.
SDK_ITEMS: list[tuple[str, bytes]] = [
    ("event", b'{"message":"hello","level":"error"}'),
    ("transaction", b'{"type":"transaction","transaction":"/index","spans":[]}'),
    ("attachment", b"\x00\x01binary\nwith newlines\n\xff"),
    ("session", b'{"sid":"abc","status":"ok","init":true}'),
    ("sessions", b'{"aggregates":[{"started":"2024-01-01T00:00:00Z","exited":3}]}'),
    ("client_report", b'{"timestamp":1700000000,"discarded_events":[]}'),
    ("check_in", b'{"check_in_id":"a","monitor_slug":"cron","status":"ok"}'),
    ("log", b'{"items":[{"level":"info","body":"hi"}]}'),
    ("span", b'{"span_id":"b","trace_id":"c"}'),
    ("profile", b'{"version":"1","samples":[]}'),
    ("replay_event", b'{"type":"replay_event","replay_id":"d"}'),
    ("replay_recording", b'{"segment_id":0}\n\x78\x9c\x03\x00\x00\x00\x00\x01'),
    ("user_report", b'{"event_id":"e","name":"n","comments":"c"}'),
    ("feedback", b'{"contexts":{"feedback":{"message":"m"}}}'),
]


def _env(*lines: bytes) -> bytes:
    return b"\n".join(lines)


def test_item_with_length_keeps_payload_exactly() -> None:
    """A length-prefixed payload may contain newlines and is read byte for byte."""
    payload = b"line1\nline2\n\n"
    data = b'{"event_id":"%s"}\n{"type":"attachment","length":%d}\n%s\n' % (EVENT_ID.encode(), len(payload), payload)
    envelope = parse_envelope(data)
    assert envelope.headers == {"event_id": EVENT_ID}
    assert envelope.event_id == EVENT_ID
    assert len(envelope.items) == 1
    assert envelope.items[0].type == "attachment"
    assert envelope.items[0].payload == payload


def test_item_without_length_ends_at_newline() -> None:
    """Without `length` the payload runs to the next newline."""
    data = _env(b"{}", b'{"type":"event"}', b'{"message":"a"}', b'{"type":"session"}', b'{"sid":"x"}', b"")
    envelope = parse_envelope(data)
    assert [i.type for i in envelope.items] == ["event", "session"]
    assert [i.payload for i in envelope.items] == [b'{"message":"a"}', b'{"sid":"x"}']


def test_item_without_length_ends_at_eof() -> None:
    """Without `length` and without a final newline, the payload runs to the end."""
    envelope = parse_envelope(_env(b"{}", b'{"type":"event"}', b'{"message":"a"}'))
    assert envelope.items[0].payload == b'{"message":"a"}'


def test_trailing_newline_optional_with_length() -> None:
    """A length-prefixed last item needs no newline after its payload."""
    with_nl = parse_envelope(b'{}\n{"type":"event","length":2}\n{}\n')
    without_nl = parse_envelope(b'{}\n{"type":"event","length":2}\n{}')
    assert with_nl.items[0].payload == without_nl.items[0].payload == b"{}"


def test_headers_only_envelope() -> None:
    """An envelope may consist of its header alone, with or without newline."""
    assert parse_envelope(b'{"event_id":"%s"}' % EVENT_ID.encode()).items == []
    assert parse_envelope(b'{"event_id":"%s"}\n' % EVENT_ID.encode()).items == []


def test_empty_payload_with_zero_length() -> None:
    """`length: 0` gives an empty payload, also at the end of the body."""
    envelope = parse_envelope(b'{}\n{"type":"attachment","length":0}\n\n{"type":"event","length":0}\n')
    assert [i.payload for i in envelope.items] == [b"", b""]
    assert parse_envelope(b'{}\n{"type":"attachment","length":0}').items[0].payload == b""


def test_empty_payload_without_length() -> None:
    """An empty line after a length-less header is that item's empty payload, not a skipped blank line."""
    envelope = parse_envelope(_env(b"{}", b'{"type":"attachment"}', b"", b'{"type":"event"}', b"{}", b""))
    assert [(i.type, i.payload) for i in envelope.items] == [("attachment", b""), ("event", b"{}")]


def test_header_at_eof_gives_empty_payload() -> None:
    """An item header as the last line, without payload, parses to an empty payload."""
    envelope = parse_envelope(b'{}\n{"type":"attachment"}')
    assert envelope.items[0].payload == b""
    envelope = parse_envelope(b'{}\n{"type":"attachment"}\n')
    assert envelope.items[0].payload == b""


def test_blank_lines_between_and_after_items() -> None:
    """Blank lines where an item header is expected are tolerated."""
    data = b'{}\n\n{"type":"event","length":2}\n{}\n\n\n{"type":"session","length":2}\n{}\n\n  \n'
    envelope = parse_envelope(data)
    assert [i.type for i in envelope.items] == ["event", "session"]
    assert [i.payload for i in envelope.items] == [b"{}", b"{}"]


def test_crlf_header_lines() -> None:
    """Header lines ending in CRLF still parse (CR is JSON whitespace)."""
    envelope = parse_envelope(b'{"event_id":"%s"}\r\n{"type":"event","length":2}\r\n{}' % EVENT_ID.encode())
    assert envelope.event_id == EVENT_ID
    assert envelope.items[0].payload == b"{}"


@pytest.mark.parametrize(("item_type", "payload"), SDK_ITEMS, ids=[t for t, _ in SDK_ITEMS])
def test_every_sdk_item_type_parses(item_type: str, payload: bytes) -> None:
    """Every item type SDKs send parses with its payload intact and a known category."""
    data = b'{"event_id":"%s"}\n{"type":"%s","length":%d}\n%s\n' % (
        EVENT_ID.encode(),
        item_type.encode(),
        len(payload),
        payload,
    )
    envelope = parse_envelope(data)
    assert len(envelope.items) == 1
    item = envelope.items[0]
    assert item.type == item_type
    assert item.payload == payload
    assert item.category != "default"
    assert category_of(item_type) == item.category


def test_all_sdk_items_in_one_envelope() -> None:
    """Many items of different types parse in order."""
    envelope = Envelope({"event_id": EVENT_ID}, [Item({"type": t}, p) for t, p in SDK_ITEMS])
    parsed = parse_envelope(envelope.serialize())
    assert [(i.type, i.payload) for i in parsed.items] == SDK_ITEMS


def test_unknown_item_type_kept_with_headers() -> None:
    """Unknown item types parse like any other, header fields preserved, category `default`."""
    payload = b"\x00opaque\nbytes"
    data = b'{}\n{"type":"future_thing","length":%d,"x":{"y":1}}\n%s\n' % (len(payload), payload)
    item = parse_envelope(data).items[0]
    assert item.type == "future_thing"
    assert item.headers == {"type": "future_thing", "length": len(payload), "x": {"y": 1}}
    assert item.payload == payload
    assert item.category == "default"


def test_item_headers_preserved() -> None:
    """Extra item header fields (filename, content_type, attachment_type) survive parsing."""
    header = {"type": "attachment", "length": 3, "filename": "a.txt", "content_type": "text/plain"}
    data = b"{}\n" + orjson.dumps({**header, "attachment_type": "event.attachment"}) + b"\nabc\n"
    item = parse_envelope(data).items[0]
    assert item.headers["filename"] == "a.txt"
    assert item.headers["content_type"] == "text/plain"
    assert item.headers["attachment_type"] == "event.attachment"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"{not json\n", "envelope header is not valid JSON"),
        (b"[1,2]\n", "envelope header must be a JSON object, got list"),
        (b'"str"\n', "envelope header must be a JSON object, got str"),
        (b'{}\n{"type":"event"\n{}\n', "item 0 header is not valid JSON"),
        (b"{}\n[]\n{}\n", "item 0 header must be a JSON object, got list"),
        (b'{}\n{"length":2}\n{}\n', "item 0 header has no string 'type'"),
        (b'{}\n{"type":""}\n{}\n', "item 0 header has no string 'type'"),
        (b'{}\n{"type":7}\n{}\n', "item 0 header has no string 'type'"),
        (
            b'{}\n{"type":"event","length":2}\n{}\n{"type":"x","length":1}\n',
            "item 1 (x): length 1 exceeds the 0 bytes left",
        ),
        (b'{}\n{"type":"event","length":100}\n{}\n', "item 0 (event): length 100 exceeds the 3 bytes left"),
        (
            b'{}\n{"type":"event","length":2}\n{}X{"type":"event"}\n',
            "item 0 (event): expected a newline after its 2-byte payload",
        ),
        (b'{}\n{"type":"event","length":-1}\n{}\n', "item 0 (event): 'length' must be a non-negative integer"),
        (b'{}\n{"type":"event","length":"2"}\n{}\n', "item 0 (event): 'length' must be a non-negative integer"),
        (b'{}\n{"type":"event","length":2.0}\n{}\n', "item 0 (event): 'length' must be a non-negative integer"),
        (b'{}\n{"type":"event","length":true}\n{}\n', "item 0 (event): 'length' must be a non-negative integer"),
    ],
    ids=[
        "empty",
        "whitespace-only",
        "bad-header-json",
        "header-list",
        "header-string",
        "bad-item-header-json",
        "item-header-list",
        "item-without-type",
        "item-empty-type",
        "item-numeric-type",
        "second-item-length-beyond-body",
        "length-beyond-body",
        "no-newline-after-payload",
        "negative-length",
        "string-length",
        "float-length",
        "bool-length",
    ],
)
def test_malformed_envelopes_raise(data: bytes, message: str) -> None:
    """Malformed envelopes raise EnvelopeError naming the problem and where it is."""
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(data)
    assert message in str(info.value)


def test_item_json_error_names_type() -> None:
    """Item.json() raises EnvelopeError naming the item type for a non-JSON payload."""
    item = Item({"type": "event"}, b"{oops")
    with pytest.raises(EnvelopeError, match="event item payload is not valid JSON"):
        item.json()
    assert Item({"type": "event"}, b'{"a":1}').json() == {"a": 1}


def test_event_id_only_when_string() -> None:
    """Envelope.event_id is the header's string event id, else None."""
    assert Envelope({"event_id": EVENT_ID}).event_id == EVENT_ID
    assert Envelope({"event_id": 5}).event_id is None
    assert Envelope({}).event_id is None


def test_categories_in_order() -> None:
    """categories() lists each item's data category in item order."""
    envelope = Envelope({}, [Item({"type": t}, b"") for t in ("event", "attachment", "client_report", "nope")])
    assert envelope.categories() == ["error", "attachment", "internal", "default"]


def test_serialize_adds_lengths() -> None:
    """serialize() writes every item with an explicit length and a trailing newline."""
    envelope = Envelope(
        {"event_id": EVENT_ID}, [Item({"type": "event"}, b'{"a":1}'), Item({"type": "attachment"}, b"x\ny")]
    )
    assert envelope.serialize() == (
        b'{"event_id":"%s"}\n{"type":"event","length":7}\n{"a":1}\n{"type":"attachment","length":3}\nx\ny\n'
        % EVENT_ID.encode()
    )


def test_serialize_fixes_stale_length() -> None:
    """A length header that no longer matches the payload is corrected on serialize."""
    item = Item({"type": "attachment", "length": 99}, b"abc")
    data = Envelope({}, [item]).serialize()
    assert parse_envelope(data).items[0].payload == b"abc"
    assert parse_envelope(data).items[0].headers["length"] == 3


def _shape(envelope: Envelope) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    items = [({k: v for k, v in i.headers.items() if k != "length"}, i.payload) for i in envelope.items]
    return envelope.headers, items


@pytest.mark.parametrize(
    "data",
    [
        b'{"event_id":"%s","sent_at":"2024-01-01T00:00:00Z"}\n{"type":"event"}\n{"message":"x"}\n' % EVENT_ID.encode(),
        b'{}\n{"type":"attachment","length":5,"filename":"f"}\na\nb\nc\n{"type":"session"}\n{}\n',
        b'{"dsn":"https://k@o1.ingest.sentry.io/1"}\n{"type":"client_report","length":0}\n\n',
        b'{"trace":{"trace_id":"t","public_key":"k"}}',
        b'{}\n{"type":"weird","length":3}\n\x00\x01\x02',
    ],
    ids=["event-no-length", "attachment-and-session", "empty-payload", "header-only", "binary-unknown"],
)
def test_parse_serialize_roundtrip(data: bytes) -> None:
    """parse -> serialize -> parse yields the same headers, items and payloads."""
    first = parse_envelope(data)
    serialized = first.serialize()
    second = parse_envelope(serialized)
    assert _shape(second) == _shape(first)
    assert second.serialize() == serialized
    assert orjson.loads(serialized.split(b"\n", 1)[0]) == first.headers
