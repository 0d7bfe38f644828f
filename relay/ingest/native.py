"""The event inside a native crash upload, assembled as Sentry Relay does, so that it is scrubbed with the rest.

A crash upload (`/minidump/`, sentry-native's crashpad and breakpad backends, Electron) carries its event in
several places besides the minidump:

- `__sentry-event`: the event as one MessagePack map, and `__sentry-breadcrumb1`/`2`: two ring buffers of
  MessagePack breadcrumbs (sentry-native). Sentry merges them into the event, so they are merged here and
  never forwarded as attachments: forwarded, they would reach Sentry unscrubbed.
- form fields: `sentry` (JSON), `sentry___<namespace>` (JSON, merged), `sentry__1..N` (one JSON document in
  chunks, Electron), `sentry[key][key]` (one string value, breakpad), and any other field, which Sentry files
  under `extra`.

A field or file that can't be read is skipped and logged (at debug, without its content): the crash is kept.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgpack
import orjson

log = logging.getLogger(__name__)

# File fields whose content is merged into the event.
EVENT_FILE = "__sentry-event"
BREADCRUMB_FILES = ("__sentry-breadcrumb1", "__sentry-breadcrumb2")
NATIVE_FILES = frozenset({EVENT_FILE, *BREADCRUMB_FILES})

_CHUNK = re.compile(r"sentry__([0-9]{1,6})")
_BRACKETS = re.compile(r"sentry((?:\[[^\[\]]+\])+)")
# Deeper than this, a MessagePack value is not an event a client wrote (and orjson writes at most 254 levels).
_MAX_DEPTH = 64
_MAX_CHUNKS = 1000


class _Unreadable(ValueError):
    """A field or file that is not what its name says."""


def assemble(fields: Iterable[tuple[str, bytes]], files: dict[str, bytes]) -> dict[str, Any]:
    """The crash's event: from `__sentry-event` and the breadcrumb files, then the form fields over it."""
    event = _msgpack_event(files.get(EVENT_FILE))
    crumbs = _breadcrumbs([files.get(name) for name in BREADCRUMB_FILES])
    if crumbs:
        event["breadcrumbs"] = {"values": crumbs}
    chunks: dict[int, str] = {}
    for name, data in fields:
        text = data.decode("utf-8", "replace")
        if name == "sentry" or name.startswith("sentry___"):
            _merge_json(event, text, name)
        elif (chunk := _CHUNK.fullmatch(name)) is not None:
            if len(chunks) < _MAX_CHUNKS:
                chunks[int(chunk.group(1))] = text
        elif (brackets := _BRACKETS.fullmatch(name)) is not None:
            _set_nested(event, brackets.group(1)[1:-1].split("]["), text)
        else:
            _set_nested(event, ["extra", name], text)
    if chunks:
        _merge_json(event, "".join(chunks[index] for index in sorted(chunks)), "sentry__N")
    return event


def merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Sentry's merge: objects merge key by key, anything else replaces what was there."""
    for key, value in source.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge(current, value)
        else:
            target[key] = value


def _merge_json(event: dict[str, Any], text: str, name: str) -> None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        log.debug("crash upload: form field %s is not valid JSON; skipped", name)
        return
    if not isinstance(value, dict):
        log.debug("crash upload: form field %s is not a JSON object; skipped", name)
        return
    merge(event, value)


def _set_nested(event: dict[str, Any], path: list[str], value: str) -> None:
    """`sentry[tags][k]=v` sets event.tags.k; a non-object on the way is replaced, as Sentry does."""
    node = event
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def _msgpack_event(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        value = _plain(msgpack.unpackb(data, raw=False, strict_map_key=False), 0)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException, _Unreadable) as exc:
        log.debug("crash upload: %s is not a MessagePack event (%s); skipped", EVENT_FILE, type(exc).__name__)
        return {}
    if not isinstance(value, dict):
        log.debug("crash upload: %s is not a MessagePack map; skipped", EVENT_FILE)
        return {}
    return value


def _breadcrumbs(buffers: list[bytes | None]) -> list[Any]:
    """The two ring buffers, older first, cut to the longer one's length (each holds at most the maximum)."""
    lists = [_msgpack_stream(data, name) for data, name in zip(buffers, BREADCRUMB_FILES, strict=True)]
    first, second = lists
    if _last_time(first) > _last_time(second):
        first, second = second, first
    keep = max(len(first), len(second))
    return (first + second)[-keep:] if keep else []


def _msgpack_stream(data: bytes | None, name: str) -> list[Any]:
    if not data:
        return []
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data))
    unpacker.feed(data)
    out: list[Any] = []
    try:
        for value in unpacker:
            value = _plain(value, 0)
            if isinstance(value, dict):
                out.append(value)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException, _Unreadable) as exc:
        log.debug("crash upload: %s is not MessagePack breadcrumbs (%s); skipped", name, type(exc).__name__)
        return []
    return out


def _last_time(crumbs: list[Any]) -> float:
    """The timestamp of the newest breadcrumb that has one (-inf if none): which buffer was written last."""
    for crumb in reversed(crumbs):
        stamp = _seconds(crumb.get("timestamp"))
        if stamp is not None:
            return stamp
    return -math.inf


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _plain(value: Any, depth: int) -> Any:
    """A MessagePack value as JSON can hold it: string keys, bytes as text; too deep is unreadable."""
    if depth > _MAX_DEPTH:
        raise _Unreadable("nested too deeply")
    if isinstance(value, dict):
        return {key if isinstance(key, str) else str(key): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, msgpack.Timestamp):
        return value.to_unix()
    if isinstance(value, msgpack.ExtType):
        raise _Unreadable("extension type")
    return value


__all__ = ["BREADCRUMB_FILES", "EVENT_FILE", "NATIVE_FILES", "assemble", "merge"]
