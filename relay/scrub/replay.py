"""Session Replay recordings: read, scrubbed as JSON, written back as Sentry Relay writes them.

A `replay_recording` item is one JSON header line (`{"segment_id": 0}`), a newline, and the segment: rrweb
events as a JSON array, zlib-compressed by the browser SDK (or plain, from SDKs that can't compress). The
events hold what the page showed and what the user did: text nodes, attribute and input values, URLs,
console breadcrumbs, network spans. Each string (and key) is scrubbed like any JSON payload, at the root
`@replay_recording`; the header is structural (a segment number). The body goes out zlib-compressed, as Relay
sends it.

A recording that can't be read is not forwarded (ScrubError: dropped as scrub_failed) and neither is its
replay event (see stage): Sentry can't show a replay without its recording.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from .engine import ScrubError

ROOT = "@replay_recording"
# Uncompressed size a segment may reach. The browser SDK cuts segments at ~20 MB uncompressed (its
# "mutation limit" stops a recording well before); the relay's scrubber holds the parsed tree in memory.
MAX_UNCOMPRESSED = 64 * 1024**2
_LEVEL = 6  # zlib's default, as Relay's encoder


def read(payload: bytes, limit: int = MAX_UNCOMPRESSED) -> tuple[bytes, Any, int]:
    """The header line, the parsed rrweb events, and the segment's uncompressed size."""
    header, newline, body = payload.partition(b"\n")
    if not newline or not body.strip():
        raise ScrubError("replay recording has no body after its header line")
    try:
        if not isinstance(orjson.loads(header), dict):
            raise ScrubError("replay recording header is not a JSON object")
    except orjson.JSONDecodeError:
        raise ScrubError("replay recording header is not JSON") from None
    data = body if body.lstrip()[:1] == b"[" else _inflate(body, limit)
    if len(data) > limit:
        raise ScrubError(f"replay recording is over {limit} bytes uncompressed")
    try:
        events = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ScrubError(f"replay recording is not JSON: {exc.msg}") from None
    return header, events, len(data)


def write(header: bytes, events: Any) -> bytes:
    """The item payload: the header line and the compressed events."""
    return header + b"\n" + zlib.compress(orjson.dumps(events), _LEVEL)


def keystrokes(events: Any) -> list[tuple[int, Any, str]]:
    """The input events' values before scrubbing: (event index, node id, text). rrweb records an input field
    once per keystroke (`j`, `jd`, ... `jd@example.com`): see `mask_keystrokes`."""
    found: list[tuple[int, Any, str]] = []
    if isinstance(events, list):
        for index, event in enumerate(events):
            text = _input_text(event)
            if text is not None:
                found.append((index, event["data"].get("id"), text))
    return found


def mask_keystrokes(events: Any, typed: list[tuple[int, Any, str]]) -> None:
    """Where the scrubber redacted a field's value, its keystrokes on the way there (and back, when the user
    deletes) go too: `jd.typed@example.c` is no e-mail address on its own, but it is the one being typed."""
    by_node: dict[Any, list[tuple[int, str, str]]] = {}
    for index, node, original in typed:
        now = _input_text(events[index]) if index < len(events) else None
        if now is not None:
            by_node.setdefault(node, []).append((index, original, now))
    for entries in by_node.values():
        redacted = sorted(((original, now) for _, original, now in entries if now != original), key=lambda r: len(r[0]))
        if not redacted:
            continue
        for index, original, now in entries:
            if now != original or not original:
                continue
            cover = next(
                (new for full, new in redacted if full.startswith(original) or original.startswith(full)), None
            )
            if cover is not None:
                events[index]["data"]["text"] = cover


def _input_text(event: Any) -> str | None:
    """The value of an rrweb input event (incremental snapshot, source 5), if `event` is one."""
    if not isinstance(event, dict) or event.get("type") != 3:
        return None
    data = event.get("data")
    if not isinstance(data, dict) or data.get("source") != 5:
        return None
    text = data.get("text")
    return text if isinstance(text, str) else None


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib, as the SDKs send it (gzip read too)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ScrubError(f"replay recording is neither JSON nor zlib: {exc}") from None
    if len(data) > limit:
        raise ScrubError(f"replay recording is over {limit} bytes uncompressed")
    if not inflater.eof:
        raise ScrubError("replay recording's compressed body is truncated")
    return data


__all__ = ["MAX_UNCOMPRESSED", "ROOT", "keystrokes", "mask_keystrokes", "read", "write"]
