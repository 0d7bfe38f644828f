"""Turning non-envelope endpoints (store, security, minidump) into envelopes."""

from __future__ import annotations

import asyncio
import base64
import binascii
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
from .body import _inflate

MINIDUMP_MAGIC = (b"MDMP", b"PMDM")


def store_to_envelope(body: bytes, max_event_size: int) -> Envelope:
    """A legacy store body (JSON, or base64 of zlib'd JSON) as an envelope with one event item."""
    event = _decode_store_body(body, max_event_size)
    event_id = _ensure_event_id(event)
    kind = "transaction" if event.get("type") == "transaction" else "event"
    return Envelope({"event_id": event_id}, [Item({"type": kind}, orjson.dumps(event))])


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


async def minidump_to_envelope(body: bytes, headers: CIMultiDictProxy[str]) -> Envelope:
    """A native crash: a raw minidump, or multipart with `upload_file_minidump` and an optional `sentry` event."""
    content_type = headers.get("Content-Type", "")
    event: dict[str, Any] = {}
    attachments: list[Item] = []
    if content_type.startswith("multipart/"):
        minidump = None
        reader = MultipartReader(headers, _stream_of(body))
        try:
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read(decode=False)
                name = part.name or ""
                if part.filename is None and name == "sentry":
                    event = _json_object(data, "the 'sentry' form field")
                elif part.filename is None:
                    continue  # other form fields: Sentry reads only a few, and they may hold PII
                elif name == "upload_file_minidump":
                    minidump = Item(
                        {
                            "type": "attachment",
                            "attachment_type": "event.minidump",
                            "filename": part.filename or "minidump.dmp",
                        },
                        bytes(data),
                    )
                else:
                    attachments.append(Item({"type": "attachment", "filename": part.filename or name}, bytes(data)))
        except (ValueError, AssertionError) as exc:
            raise HttpError(400, f"malformed multipart body: {exc}") from None
        if minidump is None:
            raise HttpError(400, "missing minidump: expected a file field named upload_file_minidump")
    else:
        minidump = Item({"type": "attachment", "attachment_type": "event.minidump", "filename": "Minidump"}, body)
    if not minidump.payload.startswith(MINIDUMP_MAGIC):
        raise HttpError(400, "upload_file_minidump is not a minidump (no MDMP header)")
    event_id = _ensure_event_id(event)
    event.setdefault("platform", "native")
    items = [Item({"type": "event"}, orjson.dumps(event)), minidump, *attachments]
    return Envelope({"event_id": event_id}, items)


def _decode_store_body(body: bytes, max_event_size: int) -> dict[str, Any]:
    data = body.strip()
    if not data.startswith(b"{"):
        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise HttpError(400, "store body is neither JSON nor base64") from None
        if not data.lstrip().startswith(b"{"):
            try:
                data = _inflate(data, max_event_size, zlib.MAX_WBITS)
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
