"""Turning non-envelope endpoints (store, security, minidump) into envelopes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bz2
import lzma
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import BodyPartReader, MultipartReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from multidict import CIMultiDictProxy

from ..envelope import Envelope, Item
from ..errors import HttpError
from .body import _free, _inflate, decompress

MINIDUMP_MAGIC = (b"MDMP", b"PMDM")


def store_to_envelope(body: bytes, max_event_size: int) -> Envelope:
    """A legacy store body (JSON, or base64 of zlib'd JSON) as an envelope with one event item."""
    event = _decode_store_body(body, max_event_size)
    event_id = _ensure_event_id(event)
    kind = "transaction" if event.get("type") == "transaction" else "event"
    return Envelope({"event_id": event_id}, [Item({"type": kind}, _dumps(event))])


def security_to_envelope(body: bytes, query: Mapping[str, str]) -> Envelope:
    """A browser security report (CSP, Expect-CT, HPKP) as a `raw_security` item, as Sentry Relay does."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"security report is not valid JSON: {exc.msg}") from None
    headers: dict[str, Any] = {"type": "raw_security"}
    for param, header in (("sentry_release", "sentry_release"), ("sentry_environment", "sentry_environment")):
        if query.get(param):
            headers[header] = query[param]
    event_id = uuid.uuid4().hex
    return Envelope({"event_id": event_id}, [Item(headers, body)])


async def minidump_to_envelope(body: bytes, headers: CIMultiDictProxy[str], limit: int) -> Envelope:
    """A native crash: a raw minidump, or multipart with `upload_file_minidump` and an optional `sentry` event."""
    content_type = headers.get("Content-Type", "")
    event: dict[str, Any] = {}
    attachments: list[Item] = []
    minidump: Item | None = None
    if content_type.startswith("multipart/"):
        reader = MultipartReader(headers, _stream_of(body))
        try:
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = bytes(await part.read(decode=False))
                name = part.name or ""
                if part.filename is None:
                    _merge_form_field(event, name, data)
                elif name == "upload_file_minidump":
                    minidump = _minidump_item(_unwrap_minidump(data, limit), part.filename or "minidump.dmp")
                else:
                    kind = _NATIVE_ATTACHMENT_TYPES.get(name, "event.attachment")
                    attachments.append(
                        Item({"type": "attachment", "attachment_type": kind, "filename": part.filename or name}, data)
                    )
        except (ValueError, AssertionError) as exc:
            raise HttpError(400, f"malformed multipart body: {exc}") from None
        if minidump is None:
            raise HttpError(400, "missing minidump: expected a file field named upload_file_minidump")
    else:
        minidump = _minidump_item(_unwrap_minidump(body, limit), "Minidump")
    event_id = _ensure_event_id(event)
    event.setdefault("platform", "native")
    items = [Item({"type": "event"}, _dumps(event)), minidump, *attachments]
    return Envelope({"event_id": event_id}, items)


# Multipart file fields that sentry-native (crashpad, breakpad) sends besides the minidump.
_NATIVE_ATTACHMENT_TYPES = {
    "__sentry-event": "event.payload",
    "__sentry-breadcrumb1": "event.breadcrumbs",
    "__sentry-breadcrumb2": "event.breadcrumbs",
}


def _minidump_item(data: bytes, filename: str) -> Item:
    if not data.startswith(MINIDUMP_MAGIC):
        raise HttpError(400, "upload_file_minidump is not a minidump (no MDMP header)")
    return Item({"type": "attachment", "attachment_type": "event.minidump", "filename": filename}, data)


def _unwrap_minidump(data: bytes, limit: int) -> bytes:
    """Electron and others compress the minidump itself: undo gzip, zstd, bzip2 or xz, within `limit`."""
    try:
        if data.startswith(b"\x1f\x8b"):
            return decompress("gzip", data, limit)
        if data.startswith(b"\x28\xb5\x2f\xfd"):
            return decompress("zstd", data, limit)
        if data.startswith(b"BZh"):
            return _bounded(bz2.BZ2Decompressor(), data, limit)
        if data.startswith(b"\xfd7zXZ\x00"):
            return _bounded(lzma.LZMADecompressor(), data, limit)
    except (OSError, lzma.LZMAError) as exc:
        raise HttpError(400, f"compressed minidump is corrupt: {exc}") from None
    return data


def _bounded(decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes, limit: int) -> bytes:
    out = decompressor.decompress(data, max_length=limit + 1)
    if len(out) > limit:
        raise HttpError(413, "decompressed minidump exceeds limits.max_decompressed_size")
    return out


def _merge_form_field(event: dict[str, Any], name: str, data: bytes) -> None:
    """`sentry` holds the event as JSON; `sentry[release]` or `sentry[tags][k]` set single fields.

    Other form fields are dropped: Sentry reads nothing else from them, and they may hold personal data.
    """
    if name == "sentry":
        event.update(_json_object(data, "the 'sentry' form field"))
        return
    if not name.startswith("sentry[") or not name.endswith("]"):
        return
    path = name[len("sentry[") : -1].split("][")
    if not all(path):
        return
    node = event
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = data.decode("utf-8", "replace")


def _decode_store_body(body: bytes, max_event_size: int) -> dict[str, Any]:
    data = body.strip()
    if not data.startswith(b"{"):
        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise HttpError(400, "store body is neither JSON nor base64") from None
        if not data.lstrip().startswith(b"{"):
            try:
                data = _inflate(data, max_event_size, zlib.MAX_WBITS, _free)
            except zlib.error:
                raise HttpError(400, "store body is neither JSON nor base64-encoded zlib JSON") from None
    return _json_object(data, "store body")


def _json_object(data: bytes | bytearray, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"{what} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise HttpError(400, f"{what} must be a JSON object")
    return value


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(event)
    except TypeError as exc:  # orjson writes at most 254 levels of nesting
        raise HttpError(400, f"event cannot be encoded: {exc}") from None


def _ensure_event_id(event: dict[str, Any]) -> str:
    event_id = event.get("event_id")
    if isinstance(event_id, str) and event_id:
        return event_id.replace("-", "").lower()
    event_id = uuid.uuid4().hex
    event["event_id"] = event_id
    return event_id


def _stream_of(data: bytes) -> StreamReader:
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream.feed_data(data)
    stream.feed_eof()
    return stream
