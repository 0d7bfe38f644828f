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
from multidict import CIMultiDict, CIMultiDictProxy

from ..envelope import Envelope, Item
from ..errors import HttpError
from . import native
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
    """A native crash: a raw minidump, or multipart with `upload_file_minidump` and the event's parts (the
    `sentry` fields, sentry-native's MessagePack files: see `native`), as an envelope of event and attachments."""
    content_type = headers.get("Content-Type", "")
    fields: list[tuple[str, bytes]] = []
    files: dict[str, bytes] = {}
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
                    fields.append((name, data))
                elif name == "upload_file_minidump":
                    data = await _embedded_minidump(_unwrap_minidump(data, limit), limit)
                    minidump = _minidump_item(data, part.filename or "minidump.dmp")
                elif name in native.NATIVE_FILES:
                    files[name] = data
                else:
                    headers_ = {
                        "type": "attachment",
                        "attachment_type": "event.attachment",
                        "filename": part.filename or name,
                    }
                    attachments.append(Item(headers_, data))
        except (ValueError, AssertionError) as exc:
            raise HttpError(400, f"malformed multipart body: {exc}") from None
        if minidump is None:
            raise HttpError(400, "missing minidump: expected a file field named upload_file_minidump")
    else:
        minidump = _minidump_item(_unwrap_minidump(body, limit), "Minidump")
    event = native.assemble(fields, files)
    event_id = _ensure_event_id(event)
    event.setdefault("platform", "native")
    items = [Item({"type": "event"}, _dumps(event)), minidump, *attachments]
    return Envelope({"event_id": event_id}, items)


async def _embedded_minidump(data: bytes, limit: int) -> bytes:
    """The minidump inside a minidump field that is itself a multipart body (Electron on Linux, before 9.0, sent
    its crash so), as Relay takes it out; any other field as it came."""
    if data.startswith(MINIDUMP_MAGIC) or not data.startswith(b"--"):
        return data
    boundary = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0][2:].strip()
    if not boundary or len(boundary) > 200:
        return data
    headers = CIMultiDictProxy(
        CIMultiDict({"Content-Type": f"multipart/form-data; boundary={boundary.decode('latin-1')}"})
    )
    reader = MultipartReader(headers, _stream_of(data))
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "upload_file_minidump":
            return _unwrap_minidump(bytes(await part.read(decode=False)), limit)
    return data


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
    """The whole body, already read, as the stream MultipartReader reads. Its high-water mark is the body's size:
    below it, feeding the body would ask this protocol, which has no transport, to pause reading (an assertion
    in aiohttp for a body over twice the limit)."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), max(2**16, len(data)), loop=loop)
    stream.feed_data(data)
    stream.feed_eof()
    return stream
