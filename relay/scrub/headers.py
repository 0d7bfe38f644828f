"""Scrubbing envelope and item headers: everything but a few structural fields goes through the rules.

Structural fields are ones the relay validates, rewrites or recomputes, so they can't carry a value through:

- envelope header: `event_id` (a UUID, checked at ingest), `dsn` (replaced with the upstream's before the
  envelope is spooled) and `sent_at` (kept only while it is a plain timestamp);
- item header: `type` (must be a snake_case name with at most 8 digits: too few for a card, IMEI or account
  number) and `length` (recomputed when the envelope is serialized).

Everything else is scanned: the `trace` context, `sdk`, an attachment's `filename`, custom fields. The other
fields the relay reads (`content_type`, `attachment_type`, `item_count`, `platform`) are scanned too: their
ordinary values (MIME types, names, counts) never match a rule, so this costs nothing and means a value
planted in them is scrubbed like any other.
"""

from __future__ import annotations

import re
from typing import Any

from ..envelope import Envelope, Item
from .audit import ScrubReport, redactions_in
from .engine import Scrubber, ScrubError

ENVELOPE_ROOT = "@envelope"  # the trace context is at `@envelope.trace`, so `$trace` rules apply to it
ITEM_ROOT = "@item"
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")
ITEM_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_TYPE_DIGITS = 8


def structural_fields(headers: dict[str, Any]) -> dict[str, Any]:
    """The envelope header fields that are structural (and so left as they are)."""
    return {k: v for k, v in headers.items() if _structural_envelope_field(k, v)}


def _structural_envelope_field(key: str, value: Any) -> bool:
    if key == "event_id":
        return isinstance(value, str) and _EVENT_ID.fullmatch(value) is not None
    if key == "dsn":
        return isinstance(value, str)  # the router replaces it with the upstream's DSN
    if key == "sent_at":
        return isinstance(value, str) and _TIMESTAMP.fullmatch(value) is not None
    return False


def scrub_envelope_headers(envelope: Envelope, scrubber: Scrubber, report: ScrubReport | None = None) -> None:
    """Scrub every envelope header field but the structural ones, in place (the trace context's `user_id`
    and `user_segment` are personal data too)."""
    headers = envelope.headers
    rest = {k: v for k, v in headers.items() if not _structural_envelope_field(k, v)}
    if rest:
        _scrub_fields(headers, rest, ENVELOPE_ROOT, "envelope", scrubber, report)


def is_item_type(kind: Any) -> bool:
    """Whether `kind` is a plain item type name: safe to forward, log and count as is."""
    return (
        isinstance(kind, str)
        and ITEM_TYPE.fullmatch(kind) is not None
        and sum(map(str.isdigit, kind)) <= _MAX_TYPE_DIGITS
    )


def check_item_type(item: Item) -> None:
    """Raise ScrubError unless the item's type is a plain name (it is never scrubbed, so it can't hold text)."""
    if not is_item_type(item.headers.get("type")):
        raise ScrubError("item type is not a snake_case name")


def scrub_item_headers(item: Item, scrubber: Scrubber, report: ScrubReport | None = None) -> None:
    """Scrub every item header field but `type` and `length`, in place."""
    rest = {k: v for k, v in item.headers.items() if k not in ("type", "length")}
    if rest:
        _scrub_fields(item.headers, rest, ITEM_ROOT, item.type, scrubber, report)


def _scrub_fields(
    headers: dict[str, Any],
    fields: dict[str, Any],
    root: str,
    kind: str,
    scrubber: Scrubber,
    report: ScrubReport | None,
) -> None:
    meta: dict[str, Any] | None = {} if report is not None else None
    original_keys = list(fields)  # (scrubbing renames a key that holds personal data, in place)
    scrubbed = scrubber.scrub(fields, root, meta)
    if not isinstance(scrubbed, dict):
        raise ScrubError(f"{root.lstrip('@')} header did not scrub to an object")
    for key in original_keys:
        del headers[key]
    headers.update(scrubbed)
    if report is not None:
        report.enforced.extend(redactions_in(meta, kind, root.lstrip("@")))


__all__ = [
    "ENVELOPE_ROOT",
    "ITEM_ROOT",
    "check_item_type",
    "is_item_type",
    "scrub_envelope_headers",
    "scrub_item_headers",
    "structural_fields",
]
