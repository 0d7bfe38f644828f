"""Property tests: envelope round trips, parse robustness, and a real relay that never answers 5xx to junk."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import time
import zlib
from dataclasses import dataclass
from typing import Any

import brotli
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.envelope import Envelope, Item, parse_envelope
from relay.errors import EnvelopeError

from ..support import KEY, PROJECT, BackgroundRelay, auth_header, background_relay, outcome_totals, received_total

# -- strategies -------------------------------------------------------------------------------------

ITEM_TYPES = [
    "event",
    "transaction",
    "attachment",
    "session",
    "sessions",
    "client_report",
    "check_in",
    "log",
    "span",
    "profile",
    "replay_event",
    "replay_recording",
    "user_report",
    "feedback",
    "statsd",
    "security",
    "raw_security",
]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
header_dicts = st.dictionaries(text, json_values, max_size=5)
item_types = st.sampled_from(ITEM_TYPES) | st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
)
extra_item_headers = st.dictionaries(text.filter(lambda k: k not in ("type", "length")), json_values, max_size=3)


@dataclass
class GeneratedItem:
    """An item as generated: its header (without length), payload, and how its length is framed."""

    headers: dict[str, Any]
    payload: bytes
    explicit_length: bool


@st.composite
def generated_items(draw: st.DrawFn, explicit_length: bool | None = None) -> GeneratedItem:
    """An item of a random type with a random binary payload, framed with or without `length`."""
    headers = {**draw(extra_item_headers), "type": draw(item_types)}
    explicit = draw(st.booleans()) if explicit_length is None else explicit_length
    if explicit:
        payload = draw(st.binary(max_size=200) | st.binary(max_size=50).map(lambda b: b"\n" + b + b"\n\n"))
    else:
        payload = draw(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")))
    return GeneratedItem(headers, payload, explicit)


@dataclass
class GeneratedEnvelope:
    """An envelope as generated, plus its wire bytes."""

    headers: dict[str, Any]
    items: list[GeneratedItem]
    wire: bytes
    canonical: bool  # explicit lengths, no blank lines, trailing newline: serialize must reproduce it


@st.composite
def generated_envelopes(draw: st.DrawFn, canonical: bool = False) -> GeneratedEnvelope:
    """Envelope bytes built by hand from random headers and items, with optional blank lines.

    `canonical` forces explicit lengths, no blank lines and a trailing newline: the form serialize() writes.
    """
    headers = draw(header_dicts)
    items = draw(st.lists(generated_items(True if canonical else None), max_size=6))
    blank_lines = False if canonical else draw(st.booleans())
    trailing_newline = True if canonical else draw(st.booleans())
    parts = [orjson.dumps(headers), b"\n"]
    for index, item in enumerate(items):
        if blank_lines and draw(st.booleans()):
            parts.append(draw(st.sampled_from([b"\n", b"\r\n", b"  \n"])))
        item_headers = {**item.headers, "length": len(item.payload)} if item.explicit_length else item.headers
        parts += [orjson.dumps(item_headers), b"\n", item.payload]
        if index < len(items) - 1 or trailing_newline:
            parts.append(b"\n")
    canonical = all(i.explicit_length for i in items) and not blank_lines and (trailing_newline or not items)
    return GeneratedEnvelope(headers, items, b"".join(parts), canonical)


def shape(envelope: Envelope) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """An envelope as comparable data, ignoring `length` headers."""
    items = [({k: v for k, v in i.headers.items() if k != "length"}, i.payload) for i in envelope.items]
    return envelope.headers, items


# -- round trips --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(generated_envelopes())
def test_parse_reads_what_was_generated(env: GeneratedEnvelope) -> None:
    """parse() recovers exactly the generated headers, item headers and payloads."""
    parsed = parse_envelope(env.wire)
    assert parsed.headers == env.headers
    assert len(parsed.items) == len(env.items)
    for got, want in zip(parsed.items, env.items, strict=True):
        assert got.payload == want.payload
        assert {k: v for k, v in got.headers.items() if k != "length"} == want.headers
        if want.explicit_length:
            assert got.headers["length"] == len(want.payload)


@settings(max_examples=300, deadline=None)
@given(generated_envelopes())
def test_serialize_parse_round_trip(env: GeneratedEnvelope) -> None:
    """serialize(parse(x)) parses back to the same envelope, and serializing again is a fixed point."""
    once = parse_envelope(env.wire).serialize()
    reparsed = parse_envelope(once)
    assert shape(reparsed) == shape(parse_envelope(env.wire))
    assert all(item.headers["length"] == len(item.payload) for item in reparsed.items)
    assert reparsed.serialize() == once


@settings(max_examples=200, deadline=None)
@given(generated_envelopes(canonical=True))
def test_canonical_envelopes_serialize_byte_for_byte(env: GeneratedEnvelope) -> None:
    """Canonical input (explicit lengths, trailing newline) is reproduced exactly by serialize(parse(x))."""
    assert env.canonical
    assert parse_envelope(env.wire).serialize() == env.wire


@settings(max_examples=200, deadline=None)
@given(header_dicts, st.lists(st.tuples(item_types, extra_item_headers, st.binary(max_size=100)), max_size=5))
def test_envelope_objects_round_trip(headers: dict[str, Any], items: list[tuple[str, dict[str, Any], bytes]]) -> None:
    """An Envelope built in code survives serialize then parse unchanged."""
    envelope = Envelope(dict(headers), [Item({**h, "type": t}, p) for t, h, p in items])
    parsed = parse_envelope(envelope.serialize())
    assert shape(parsed) == shape(envelope)


# -- robustness -----------------------------------------------------------------------------------------


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    """Valid envelope bytes, then truncated, spliced or with bytes overwritten."""
    wire = bytearray(draw(generated_envelopes()).wire)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(wire))))
        if op == "truncate":
            del wire[pos:]
        elif op == "overwrite" and pos < len(wire):
            wire[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            wire[pos:pos] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"\n", b"{", b'"length":', b"-1"])
            )
        elif op == "delete":
            del wire[pos : pos + draw(st.integers(1, 8))]
    return bytes(wire)


def nested(depth: int) -> bytes:
    """A JSON value nested `depth` arrays deep."""
    return b"[" * depth + b"]" * depth


def deep_header_envelope(depth: int) -> bytes:
    """An envelope whose header holds a value nested `depth` levels deep, plus one event item."""
    return b'{"x":' + nested(depth) + b'}\n{"type":"event","length":2}\n{}\n'


suspicious_bytes = st.sampled_from(
    [
        b"{}\n" + b'{"type":"event","length":18446744073709551616}\n{}',
        b"{}\n" + b'{"type":"event","length":1e400}\n{}',
        b"{}\n" + b'{"type":"event","length":-0}\n',
        b'{"a":"\\ud800"}\n',
        b"\xef\xbb\xbf{}\n",
        b'{}\r\n{"type":"event"}\r\n{}\r\n',
        deep_header_envelope(300),
        deep_header_envelope(1100),
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | mutated_envelopes() | suspicious_bytes)
@example(b"")
@example(b"\n\n\n")
@example(b"null\n")
@example(b"{}\n{}\n")
@example(b'{}\n{"type":"event","length":5}\nab')
@example(b'{}\n{"type":"event","length":2}\nabX')
@example(b'{}\n{"type":""}\n')
@example(b'{}\n{"type":"event","length":true}\n')
def test_parse_raises_only_envelope_error(data: bytes) -> None:
    """On any bytes, parse either succeeds or raises EnvelopeError, never anything else."""
    with contextlib.suppress(EnvelopeError):
        parse_envelope(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | mutated_envelopes() | suspicious_bytes)
def test_whatever_parses_can_be_serialized_and_reparsed(data: bytes) -> None:
    """Anything parse accepts, serialize can render, and the rendering parses to the same envelope."""
    try:
        envelope = parse_envelope(data)
    except EnvelopeError:
        return
    before = shape(envelope)
    assert shape(parse_envelope(envelope.serialize())) == before


@pytest.mark.parametrize("depth", [200, 300])
def test_deeply_nested_header_parses_only_if_it_serializes(depth: int) -> None:
    """A header nested too deeply to serialize is refused by parse with EnvelopeError, not accepted."""
    try:
        envelope = parse_envelope(deep_header_envelope(depth))
    except EnvelopeError:
        return
    envelope.serialize()


# -- through a real relay ---------------------------------------------------------------------------------

ENCODINGS = [
    None,
    "",
    "identity",
    "gzip",
    "x-gzip",
    "deflate",
    "br",
    "zstd",
    "gzip, br",
    "zstd, gzip",
    "compress",
    "GZIP",
    "gzip;q=1",
    "utf-8",
    "bogus",
]


def encode(body: bytes, encoding: str | None, raw_deflate: bool) -> bytes:
    """Apply the content codings named in `encoding`, in order; unknown ones leave the body alone."""
    for name in (encoding or "").split(","):
        name = name.strip().lower()
        if name in ("gzip", "x-gzip"):
            body = gzip.compress(body)
        elif name == "deflate":
            if raw_deflate:  # some clients send deflate without the zlib wrapper
                raw = zlib.compressobj(wbits=-15)
                body = raw.compress(body) + raw.flush()
            else:
                body = zlib.compress(body)
        elif name == "br":
            body = brotli.compress(body)
        elif name == "zstd":
            body = zstandard.ZstdCompressor().compress(body)
    return body


json_events = st.dictionaries(
    st.sampled_from(["event_id", "message", "type", "level", "extra", "tags", "exception", "spans", "transaction"])
    | text,
    json_values,
    max_size=6,
)


@st.composite
def item_payloads(draw: st.DrawFn, item_type: str) -> bytes:
    """A payload for an item: valid JSON for its type, junk, or empty."""
    kind = draw(st.sampled_from(["json", "junk", "empty", "json_list"]))
    if kind == "json":
        event = draw(json_events)
        if item_type == "transaction":
            event["type"] = "transaction"
        return orjson.dumps(event)
    if kind == "json_list":
        return orjson.dumps(draw(st.lists(json_values, max_size=3)))
    if kind == "junk":
        return draw(st.binary(max_size=120))
    return b""


@st.composite
def envelope_requests(draw: st.DrawFn) -> bytes:
    """An envelope body: random item mixtures, with or without a matching or mismatched dsn header."""
    headers: dict[str, Any] = draw(header_dicts)
    dsn_choice = draw(st.sampled_from(["none", "match", "other_key", "other_project", "junk"]))
    if dsn_choice == "match":
        headers["dsn"] = f"http://{KEY}@relay.local/{PROJECT}"
    elif dsn_choice == "other_key":
        headers["dsn"] = f"http://ffff@relay.local/{PROJECT}"
    elif dsn_choice == "other_project":
        headers["dsn"] = f"http://{KEY}@relay.local/7"
    elif dsn_choice == "junk":
        headers["dsn"] = draw(st.sampled_from(["", "not a dsn", "http://[::1/42", 42]))
    if draw(st.booleans()):
        headers["event_id"] = draw(st.sampled_from(["a" * 32, "", None, 5]) | text)
    if draw(st.booleans()):
        headers["trace"] = draw(st.sampled_from([{"public_key": KEY, "trace_id": "b" * 32}, "x", None, {}]))
    parts = [orjson.dumps(headers), b"\n"]
    for _ in range(draw(st.integers(0, 5))):
        item_type = draw(st.sampled_from(ITEM_TYPES) | item_types)
        payload = draw(item_payloads(item_type))
        item_headers: dict[str, Any] = {**draw(extra_item_headers), "type": item_type}
        if draw(st.booleans()) or b"\n" in payload:
            item_headers["length"] = len(payload)
        parts += [orjson.dumps(item_headers), b"\n", payload, b"\n"]
    return b"".join(parts)


@st.composite
def store_requests(draw: st.DrawFn) -> bytes:
    """A store body: JSON event, base64 (zlib) JSON, or junk."""
    event = orjson.dumps(draw(json_events))
    kind = draw(st.sampled_from(["json", "base64", "base64_zlib", "junk", "json_list"]))
    if kind == "json":
        return event
    if kind == "base64":
        return base64.b64encode(event)
    if kind == "base64_zlib":
        return base64.b64encode(zlib.compress(event))
    if kind == "json_list":
        return orjson.dumps(draw(st.lists(json_values, max_size=3)))
    return draw(st.binary(max_size=200))


@dataclass
class Sent:
    """What the fuzzer sent and what the relay answered."""

    path: str
    encoding: str | None
    status: int
    body: bytes


def post(relay: BackgroundRelay, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST synchronously to the relay and return status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_settled(relay: BackgroundRelay, timeout: float = 20.0) -> None:
    """Wait until the relay's queue is empty."""
    assert relay.state is not None
    deadline = time.monotonic() + timeout
    while relay.state.spool.pending() > 0:
        assert time.monotonic() < deadline, f"{relay.state.spool.pending()} envelopes still queued"
        time.sleep(0.02)


# Every volume-control feature on at once: filters, fingerprints, sampling, quotas and client reports.
VOLUME = f"""
outcomes: {{interval: 1h}}  # reports at shutdown only: the in = out check below runs before
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    filters: {{exception_types: ["*Error"], messages: ["*a*"], transactions: ["/x*"], releases: ["*"],
              environments: [prod], localhost: true, browser_extensions: true, web_crawlers: true}}
    fingerprints:
      - {{match: {{error.type: "*", "!error.value": "*b*", tags.t: "*"}}, fingerprint: [x, "{{{{ default }}}}"]}}
      - {{match: {{stack.function: "*", app: "yes", message: "*"}}, fingerprint: ["{{{{ function }}}}"],
         override: true}}
    sampling:
      error: 0.7
      transaction: 0.5
      rules: [{{id: r, match: {{level: fatal, tags: {{t: "*"}}}}, rate: 0.2}}]
    quotas:
      - {{id: e, categories: [error, default], scope: key, limit: 40, window: 1h, burst: 20}}
      - {{id: a, categories: [attachment], limit: 2KiB, window: 1h}}
"""


@pytest.mark.parametrize("rules", ["[]", "[secrets, pii]", "volume"], ids=["plain", "scrubbing", "volume"])
def test_relay_never_answers_5xx_to_fuzzed_requests(rules: str) -> None:
    """Random bytes and random item mixtures, on /envelope/ and /store/, under any Content-Encoding: never 5xx."""
    options: dict[str, Any] = {"rules": rules}
    if rules == "volume":
        options = {"rules": "[secrets, pii]", "projects": VOLUME}
    with background_relay(**options) as relay:
        assert relay.state is not None
        sent: list[Sent] = []

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            endpoint=st.sampled_from(["envelope", "store"]),
            data=st.data(),
            encoding=st.sampled_from(ENCODINGS),
            really_encode=st.booleans(),
            raw_deflate=st.booleans(),
            content_type=st.sampled_from(
                [None, "application/x-sentry-envelope", "application/json", "text/plain;charset=UTF-8"]
            ),
        )
        def check(
            endpoint: str,
            data: st.DataObject,
            encoding: str | None,
            really_encode: bool,
            raw_deflate: bool,
            content_type: str | None,
        ) -> None:
            if endpoint == "envelope":
                body = data.draw(envelope_requests() | st.binary(max_size=300) | mutated_envelopes(), label="body")
            else:
                body = data.draw(store_requests() | envelope_requests(), label="body")
            if really_encode:
                body = encode(body, encoding, raw_deflate)
            headers = dict(auth_header())
            if encoding is not None:
                headers["Content-Encoding"] = encoding
            if content_type is not None:
                headers["Content-Type"] = content_type
            path = f"/api/{PROJECT}/{endpoint}/"
            status, answer = post(relay, path, body, headers)
            sent.append(Sent(path, encoding, status, answer))
            assert status < 500, f"{path} with Content-Encoding {encoding!r} answered {status}: {answer[:300]!r}"
            if status >= 400:
                assert "detail" in orjson.loads(answer)

        check()

        wait_settled(relay)
        statuses = {s.status for s in sent}
        assert 200 in statuses, "the fuzzer never produced an accepted request"
        assert statuses & {400, 401, 413, 415, 429}, "the fuzzer never produced a refused request"
        # Every item that entered the relay ended in exactly one outcome.
        totals = outcome_totals(relay.state)
        assert sum(totals.values()) == received_total(relay.state), totals


@pytest.mark.parametrize("rules", ["[]", "[secrets, pii]"], ids=["plain", "scrubbing"])
@pytest.mark.parametrize("endpoint", ["envelope", "store"])
def test_relay_refuses_deeply_nested_json_without_5xx(endpoint: str, rules: str) -> None:
    """JSON nested too deeply to re-serialize is refused with 4xx (or accepted), never a 500."""
    depth = 300  # orjson reads up to 1024 levels but writes at most 254
    with background_relay(rules=rules) as relay:
        if endpoint == "envelope":
            body = deep_header_envelope(depth)
            headers = auth_header()
        else:
            body = b'{"extra":' + nested(depth) + b"}"
            headers = {**auth_header(), "Content-Type": "application/json"}
        status, answer = post(relay, f"/api/{PROJECT}/{endpoint}/", body, headers)
        assert status < 500, answer
        if status == 200:
            relay.wait_for(1)
