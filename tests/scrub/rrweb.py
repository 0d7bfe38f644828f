"""A Session Replay segment as @sentry/browser records it (rrweb events), for the replay recording tests."""

from __future__ import annotations

import zlib
from typing import Any

import orjson


def segment(text: str, typed: str, href: str) -> list[dict[str, Any]]:
    """rrweb events: page meta, a full DOM snapshot with `text` shown, an input of `typed`, a console crumb."""
    return [
        {"type": 4, "timestamp": 1733500000000, "data": {"href": href, "width": 1280, "height": 720}},
        {
            "type": 2,
            "timestamp": 1733500000001,
            "data": {
                "node": {
                    "type": 0,
                    "id": 1,
                    "childNodes": [
                        {
                            "type": 2,
                            "id": 2,
                            "tagName": "html",
                            "attributes": {"lang": "en"},
                            "childNodes": [
                                {"type": 3, "id": 3, "textContent": text},
                                {
                                    "type": 2,
                                    "id": 4,
                                    "tagName": "input",
                                    "attributes": {"type": "email", "value": typed, "placeholder": "e-mail"},
                                    "childNodes": [],
                                },
                                {"type": 2, "id": 5, "tagName": "a", "attributes": {"href": href}, "childNodes": []},
                            ],
                        }
                    ],
                },
                "initialOffset": {"left": 0, "top": 0},
            },
        },
        {"type": 3, "timestamp": 1733500000500, "data": {"source": 5, "id": 4, "text": typed, "isChecked": False}},
        {
            "type": 5,
            "timestamp": 1733500000600,
            "data": {
                "tag": "breadcrumb",
                "payload": {
                    "timestamp": 1733500000.6,
                    "type": "default",
                    "category": "console",
                    "level": "log",
                    "message": f"signed in as {typed}",
                },
            },
        },
    ]


def recording(events: list[dict[str, Any]], compressed: bool = True, segment_id: int = 0) -> bytes:
    """A replay_recording item payload: the header line, then the events (zlib-compressed, as the SDK sends)."""
    body = orjson.dumps(events)
    return orjson.dumps({"segment_id": segment_id}) + b"\n" + (zlib.compress(body) if compressed else body)


def events_of(payload: bytes) -> list[dict[str, Any]]:
    """The rrweb events in a replay_recording payload (compressed or not)."""
    _, _, body = payload.partition(b"\n")
    data = body if body[:1] == b"[" else zlib.decompress(body)
    events: list[dict[str, Any]] = orjson.loads(data)
    return events


def typing(node: int, value: str, start: int = 1733500001000) -> list[dict[str, Any]]:
    """The input events rrweb records while `value` is typed into node `node`: one per keystroke."""
    return [
        {"type": 3, "timestamp": start + n, "data": {"source": 5, "id": node, "text": value[:n], "isChecked": False}}
        for n in range(1, len(value) + 1)
    ]
