"""Sentry envelopes: parse the wire format into items, and serialize them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import EnvelopeError, InvalidItemJson, TooManyItems
from .categories import CONTAINER_CONTENT_TYPE, CONTAINER_TYPES, MAX_CONTAINER_ITEMS, category_of, dependent_types


@dataclass(slots=True)
class Item:
    """One envelope item: its header (with `type`) and raw payload bytes.

    The parsed JSON is kept while `payload` is the bytes it was parsed from, so validation, filters,
    sampling and scrubbing parse an item once between them.
    """

    headers: dict[str, Any]
    payload: bytes
    _parsed: Any = field(default=None, repr=False, compare=False)
    _parsed_from: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def type(self) -> str:
        """The item type, such as `event` or `attachment`."""
        return str(self.headers.get("type", ""))

    @property
    def category(self) -> str:
        """The data category this item counts in."""
        return category_of(self.type)

    @property
    def quantity(self) -> int:
        """How many items this counts as: a container's `item_count` (bounded by its size), else 1."""
        if self.headers.get("type") not in CONTAINER_TYPES:
            return 1
        count = self.headers.get("item_count")
        content_type = self.headers.get("content_type")
        if type(count) is not int or not isinstance(content_type, str):
            return 1
        if not content_type.startswith(CONTAINER_CONTENT_TYPE):
            return 1
        # Each inner item is an object ("{}" and a comma at least): a lying count can't pass the payload's size.
        return max(1, min(count, MAX_CONTAINER_ITEMS, len(self.payload) // 3 or 1))

    def json(self) -> Any:
        """The payload parsed as JSON (shared, not a copy); EnvelopeError when it is not JSON."""
        payload = self.payload
        if self._parsed_from is payload:
            return self._parsed
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidItemJson(self.type, exc.msg) from None
        self._parsed, self._parsed_from = value, payload
        return value

    def json_object(self) -> dict[str, Any] | None:
        """The payload if it is a JSON object, else None (invalid JSON included: the scrub stage reports that;
        filters and sampling just don't read it)."""
        try:
            value = self.json()
        except Exception:
            return None
        return value if isinstance(value, dict) else None

    def bare(self) -> Item:
        """The same header and payload without the parsed form: what crosses to or from another process,
        where pickling a parsed 1 MB payload would cost more than parsing it again."""
        return Item(self.headers, self.payload)

    def set_json(self, value: Any) -> None:
        """Replace the payload with `value` serialized (and keep `value` as its parsed form)."""
        self.payload = orjson.dumps(value)
        self._parsed, self._parsed_from = value, self.payload


@dataclass(slots=True)
class Envelope:
    """A parsed envelope: header object plus ordered items."""

    headers: dict[str, Any] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)

    @property
    def event_id(self) -> str | None:
        """The envelope's event id, from its header."""
        value = self.headers.get("event_id")
        return value if isinstance(value, str) else None

    def dependents(self, categories: set[str]) -> list[Item]:
        """Items that go with dropped items of these categories (attachments, user report, profile)."""
        if not categories:
            return []
        types = dependent_types(categories)
        return [item for item in self.items if item.type in types and item.category not in categories]

    def categories(self) -> list[str]:
        """The data category of every item, in order; a container's once per item inside it."""
        return [item.category for item in self.items for _ in range(item.quantity)]

    def serialize(self) -> bytes:
        """Render the wire format; every item gets an explicit `length`."""
        parts = [orjson.dumps(self.headers), b"\n"]
        for item in self.items:
            item.headers["length"] = len(item.payload)
            parts += (orjson.dumps(item.headers), b"\n", item.payload, b"\n")
        return b"".join(parts)


def parse_envelope(data: bytes, max_items: int | None = None) -> Envelope:
    """Parse envelope bytes; raise EnvelopeError saying exactly what is wrong, TooManyItems (a subclass) as soon
    as an item past `max_items` begins: a small compressed body can hold hundreds of thousands of tiny items,
    and none of those past the limit is ever parsed or allocated."""
    if not data.strip():
        raise EnvelopeError("envelope is empty")
    end = data.find(b"\n")
    header_line = data if end < 0 else data[:end]
    headers = _parse_header(header_line, "envelope header")
    envelope = Envelope(headers=headers)
    pos = len(data) if end < 0 else end + 1
    size = len(data)
    index = 0
    while pos < size:
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end]
        if not line.strip():  # tolerate blank lines between and after items
            pos = size if end < 0 else end + 1
            continue
        if max_items is not None and index >= max_items:
            raise TooManyItems(f"envelope holds more than {max_items} items (limits.max_envelope_items)")
        item_headers = _parse_header(line, f"item {index} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"item {index} header has no string 'type'")
        pos = size if end < 0 else end + 1
        length = item_headers.get("length")
        if length is None:
            end = data.find(b"\n", pos)
            payload_end = size if end < 0 else end
            payload = data[pos:payload_end]
            pos = payload_end + 1
        else:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise EnvelopeError(f"item {index} ({item_type}): 'length' must be a non-negative integer")
            if pos + length > size:
                raise EnvelopeError(
                    f"item {index} ({item_type}): length {length} exceeds the {size - pos} bytes left in the envelope"
                )
            payload = data[pos : pos + length]
            pos += length
            if pos < size:
                if data[pos] != 0x0A:
                    raise EnvelopeError(
                        f"item {index} ({item_type}): expected a newline after its {length}-byte payload"
                    )
                pos += 1
        envelope.items.append(Item(headers=item_headers, payload=payload))
        index += 1
    return envelope


def _parse_header(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"{what} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object, got {type(value).__name__}")
    # Nesting past the limit takes at least that many brackets: most headers are never walked.
    if line.count(b"{") + line.count(b"[") >= _MAX_HEADER_DEPTH and _depth(value) > _MAX_HEADER_DEPTH:
        raise EnvelopeError(f"{what} is nested deeper than {_MAX_HEADER_DEPTH} levels")
    return value


_MAX_HEADER_DEPTH = 32


def _depth(value: Any, level: int = 1) -> int:
    """Nesting depth of a JSON value, stopping early once past the limit."""
    if level > _MAX_HEADER_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level
