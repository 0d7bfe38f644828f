"""Scrubbing each envelope item type: events with `_meta`, other JSON at a named root, text, or nothing.

Item headers are scrubbed too (see scrub.headers), and client reports are rebuilt from their schema.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import Any

import orjson

from ..envelope import Envelope, Item
from ..envelope.categories import CONTAINER_CONTENT_TYPE
from ..errors import InvalidItemJson
from ..logs import log_event
from . import replay
from .audit import Auditor, ScrubReport, redactions_in, text_redactions
from .client_report import clean_client_report
from .engine import Remark, Scrubber, ScrubError
from .headers import check_item_type, is_item_type, scrub_envelope_headers, scrub_item_headers, structural_fields
from .incoming_meta import merge_incoming_meta
from .meta import merge_meta
from .sql_fields import mask_sql_literals, record_sql

logger = logging.getLogger("relay.scrub")

# Item types whose payload is an event: scrubbed from the root, with Sentry `_meta` remarks.
EVENT_TYPES = frozenset({"event", "transaction", "feedback", "replay_event"})
# Other JSON items, scrubbed under a root named for their type (selectors: `$log`, `$session`...).
# Roots start with "@" so they can never collide with (or be matched as) a key name.
JSON_ROOTS: dict[str, str] = {
    "session": "@session",
    "sessions": "@sessions",
    "user_report": "@user_report",
    "log": "@log",
    "otel_log": "@log",
    "span": "@span",
    "otel_span": "@span",
    "check_in": "@check_in",
    "security": "@security",
    "raw_security": "@security",
    "profile": "@profile",
    "profile_chunk": "@profile",
    "trace_metric": "@trace_metric",
}
# Binary by nature: can't be scanned, so dropped unless the project opts in. (Replay recordings are rrweb
# JSON, scrubbed: see scrub.replay. A mobile replay's video is pixels.)
UNSCANNABLE_TYPES = frozenset({"replay_video"})
_TEXT_SUFFIXES = (".txt", ".log", ".json", ".csv", ".xml", ".yaml", ".yml", ".html", ".md", ".ndjson")


class Verdict(enum.Enum):
    """What happened to an item."""

    SCRUBBED = "scrubbed"
    UNSCANNABLE = "unscannable"


def scrub_event(
    scrubber: Scrubber,
    event: dict[str, Any],
    remarks: dict[str, Any] | None = None,
    limit: float | None = None,
    report: ScrubReport | None = None,
    kind: str = "event",
) -> dict[str, Any]:
    """An event or transaction as the server scrubs it: SQL literals, then the rules, then the `_meta` it came
    with, cleaned (what `relay scrub` and the benchmarks call too)."""
    incoming = event.pop("_meta", None)  # may hold original values: cleaned, then merged (scrub.incoming_meta)
    sql = mask_sql_literals(event, "", scrubber)  # before the rules: SQL literals (scrub.sql_fields)
    scrubbed = scrubber.scrub_event(event, remarks, limit)
    record_sql(sql, report, kind, scrubbed)
    if incoming is not None:
        merge_incoming_meta(scrubbed, incoming)
    return scrubbed


def scrub_payload(
    scrubber: Scrubber,
    payload: Any,
    root: str,
    meta: dict[str, Any] | None = None,
    limit: float | None = None,
    report: ScrubReport | None = None,
    kind: str = "span",
) -> Any:
    """A JSON item other than an event (spans, logs...) as the server scrubs it: SQL literals in span items,
    then the rules at the item type's root (what the benchmarks call too)."""
    sql = mask_sql_literals(payload, root, scrubber)
    scrubbed = scrubber.scrub(payload, root, meta, limit)
    record_sql(sql, report, kind, root=root)
    if sql and meta is not None:  # the SQL masks go ahead of the rules' remarks, as in an event's `_meta`
        merged = merge_meta(sql, meta)
        meta.clear()
        meta.update(merged)
    return scrubbed


class _Scrubbing:
    """The scrubber for one envelope, and where its redactions (and audit findings) are reported."""

    __slots__ = ("auditor", "limit", "report", "scrubber")

    def __init__(self, scrubber: Scrubber, report: ScrubReport | None, auditor: Auditor | None, limit: float) -> None:
        self.scrubber = scrubber
        self.report = report
        self.auditor = auditor if report is not None else None
        self.limit = limit  # the time bound for this item, scaled to its size

    def event(self, event: dict[str, Any], kind: str) -> dict[str, Any]:
        remarks: dict[str, Any] | None = {} if self.report is not None else None
        scrubbed = scrub_event(self.scrubber, event, remarks, self.limit, self.report, kind)
        if self.report is not None:
            self.report.enforced.extend(redactions_in(remarks, kind))
            if self.auditor is not None:
                self.report.audited.extend(self.auditor.event(scrubbed, kind, self.limit))
        return scrubbed

    def payload(self, payload: Any, root: str, kind: str) -> Any:
        meta: dict[str, Any] | None = {} if self.report is not None else None
        scrubbed = scrub_payload(self.scrubber, payload, root, meta, self.limit, self.report, kind)
        if self.report is not None:
            self.report.enforced.extend(redactions_in(meta, kind, root.lstrip("@")))
            if self.auditor is not None:
                self.report.audited.extend(self.auditor.payload(scrubbed, root, kind, self.limit))
        return scrubbed

    def inner(self, payload: Any, root: str, kind: str, path: str, limit: float) -> tuple[Any, dict[str, Any]]:
        """One item inside a container, scrubbed within `limit`, with its own `_meta` (as Sentry keeps it there)."""
        meta: dict[str, Any] = {}
        scrubbed = scrub_payload(self.scrubber, payload, root, meta, limit, self.report, kind)
        if self.report is not None:
            self.report.enforced.extend(redactions_in(meta, kind, path))
            if self.auditor is not None:
                self.report.audited.extend(self.auditor.payload(scrubbed, root, kind, limit))
        return scrubbed, meta

    def text(self, text: str, root: str, kind: str) -> str | None:
        remarks: list[Remark] | None = [] if self.report is not None else None
        scrubbed = self.scrubber.scrub_text(text, root, remarks, self.limit)
        if self.report is not None and remarks is not None:
            self.report.enforced.extend(text_redactions(remarks, kind, root))
            if self.auditor is not None and scrubbed is not None:
                self.report.audited.extend(self.auditor.text(scrubbed, root, kind, self.limit))
        return scrubbed


def scrub_item(
    item: Item, scrubber: Scrubber, report: ScrubReport | None = None, auditor: Auditor | None = None
) -> Verdict:
    """Scrub one item (payload and header) in place; raise ScrubError when it can't be done safely.

    With a `report`, the redactions made (and, with an `auditor`, those audit rules would make) are added.
    """
    check_item_type(item)
    verdict = _scrub_payload(item, scrubber, report, auditor)
    scrub_item_headers(item, scrubber, report)
    return verdict


def _scrub_payload(item: Item, scrubber: Scrubber, report: ScrubReport | None, auditor: Auditor | None) -> Verdict:
    scrubbing = _Scrubbing(scrubber, report, auditor, scrubber.time_limit_for(len(item.payload)))
    kind = item.type
    if not item.payload:
        return Verdict.SCRUBBED
    if kind == "client_report":
        return _clean_client_report(item, scrubbing)
    if kind in EVENT_TYPES:
        event = _load(item)
        if not isinstance(event, dict):
            raise ScrubError(f"{kind} payload is not a JSON object")
        item.set_json(scrubbing.event(event, kind))
        return Verdict.SCRUBBED
    root = JSON_ROOTS.get(kind)
    if root is not None:
        payload = _load(item)
        if is_container(item, payload):
            item.set_json(_scrub_container(payload, root, kind, scrubbing))
            item.headers["item_count"] = len(payload["items"])
        else:
            item.set_json(scrubbing.payload(payload, root, kind))
        return Verdict.SCRUBBED
    if kind == "replay_recording":
        return _scrub_replay_recording(item, scrubbing)
    if kind in UNSCANNABLE_TYPES:
        return Verdict.UNSCANNABLE
    if kind == "attachment":
        return _scrub_attachment(item, scrubbing)
    return _scrub_unknown(item, scrubbing)


def _scrub_attachment(item: Item, scrubbing: _Scrubbing) -> Verdict:
    content_type = str(item.headers.get("content_type") or "").split(";")[0].strip().lower()
    filename = str(item.headers.get("filename") or "").lower()
    if item.headers.get("attachment_type", "event.attachment") != "event.attachment":
        return Verdict.UNSCANNABLE  # minidumps, Apple crash reports, view hierarchies...
    is_json = content_type in ("application/json", "application/x-ndjson") or filename.endswith((".json", ".ndjson"))
    is_text = content_type.startswith("text/") or is_json or filename.endswith(_TEXT_SUFFIXES)
    if not is_text:
        return Verdict.UNSCANNABLE
    try:
        text = item.payload.decode("utf-8")
    except UnicodeDecodeError:
        return Verdict.UNSCANNABLE
    if is_json:
        try:
            item.payload = orjson.dumps(scrubbing.payload(orjson.loads(item.payload), "@attachment", item.type))
            return Verdict.SCRUBBED
        except orjson.JSONDecodeError:
            pass  # not JSON after all: scrub it as text
    return _scrub_as_text(item, text, scrubbing, "@attachment")


def is_container(item: Item, payload: Any) -> bool:
    """A container item (logs, v2 spans, trace metrics): `{"items": [...]}` with a container content type."""
    content_type = item.headers.get("content_type")
    return (
        isinstance(content_type, str)
        and content_type.startswith(CONTAINER_CONTENT_TYPE)
        and isinstance(payload, dict)
        and isinstance(payload.get("items"), list)
    )


def _scrub_container(payload: dict[str, Any], root: str, kind: str, scrubbing: _Scrubbing) -> dict[str, Any]:
    """Each inner item scrubbed at the type's root with its own `_meta` (incoming `_meta` there is dropped: it
    may hold original values), all within the item's one time bound. Other top-level keys are scrubbed too."""
    deadline = time.perf_counter() + scrubbing.limit
    items: list[Any] = []
    for index, inner in enumerate(payload["items"]):
        left = deadline - time.perf_counter()
        if left <= 0:
            raise ScrubError(f"{kind} container took longer than its time bound")
        if isinstance(inner, dict):
            inner.pop("_meta", None)
        scrubbed, meta = scrubbing.inner(inner, root, kind, f"{root.lstrip('@')}.items.{index}", left)
        if meta and isinstance(scrubbed, dict):
            scrubbed["_meta"] = meta
        items.append(scrubbed)
    rest = {key: value for key, value in payload.items() if key != "items"}
    out: dict[str, Any] = scrubbing.payload(rest, root, kind) if rest else {}
    out["items"] = items
    return out


def _scrub_replay_recording(item: Item, scrubbing: _Scrubbing) -> Verdict:
    """The rrweb events inside, scrubbed as JSON (within a time bound for their uncompressed size)."""
    header, events, size = replay.read(item.payload)
    scrubbing.limit = scrubbing.scrubber.time_limit_for(size)
    typed = replay.keystrokes(events)
    scrubbed = scrubbing.payload(events, replay.ROOT, item.type)
    replay.mask_keystrokes(scrubbed, typed)
    item.payload = replay.write(header, scrubbed)
    return Verdict.SCRUBBED


def _clean_client_report(item: Item, scrubbing: _Scrubbing) -> Verdict:
    """Client reports hold counts: rebuilt from the fields their schema has (see scrub.client_report)."""
    payload = _load(item)
    clean, dropped = clean_client_report(payload, scrubbing.scrubber)
    if dropped:
        item.set_json(clean)
        if scrubbing.report is not None:
            scrubbing.report.enforced.extend(dropped)
    return Verdict.SCRUBBED


def _scrub_unknown(item: Item, scrubbing: _Scrubbing) -> Verdict:
    """Unknown item types pass only if they are JSON or text the engine can read."""
    root = "@" + item.type
    try:
        payload = orjson.loads(item.payload)
    except orjson.JSONDecodeError:
        try:
            text = item.payload.decode("utf-8")
        except UnicodeDecodeError:
            return Verdict.UNSCANNABLE
        return _scrub_as_text(item, text, scrubbing, root)
    item.payload = orjson.dumps(scrubbing.payload(payload, root, item.type))
    return Verdict.SCRUBBED


def _scrub_as_text(item: Item, text: str, scrubbing: _Scrubbing, root: str) -> Verdict:
    """Scrub a decoded payload as one string and store it back (empty if a rule removed it)."""
    scrubbed = scrubbing.text(text, root, item.type)
    item.payload = b"" if scrubbed is None else scrubbed.encode("utf-8")
    return Verdict.SCRUBBED


def _load(item: Item) -> Any:
    try:
        return item.json()  # parsed once at ingest; scrubbed in place, then `set_json`
    except InvalidItemJson as exc:
        raise ScrubError(f"{item.type} payload is not valid JSON: {exc.reason}") from None


def scrub_envelope(
    envelope: Envelope,
    forward_unscannable: bool,
    scrubber: Scrubber,
    auditor: Auditor | None = None,
    report: ScrubReport | None = None,
) -> tuple[list[Item], list[Item]]:
    """Scrub every item and the envelope header in place; return the items that failed and those that can't be
    scanned (and may not be forwarded unscanned). Never raises: a failing item is the caller's to drop."""
    failed: list[Item] = []
    unscannable: list[Item] = []
    for item in envelope.items:
        try:
            verdict = scrub_item(item, scrubber, report, auditor)
        except ScrubError as exc:
            log_event(logger, logging.WARNING, "scrub failed, item dropped", item_type=_label(item), error=str(exc))
            failed.append(item)
            continue
        except Exception as exc:  # fail closed on bugs too; the message might quote the payload, so not logged
            log_event(logger, logging.ERROR, "scrub crashed, item dropped", item_type=_label(item),
                      error=type(exc).__name__)  # fmt: skip
            failed.append(item)
            continue
        if verdict is Verdict.UNSCANNABLE and not forward_unscannable:
            unscannable.append(item)
    try:
        scrub_envelope_headers(envelope, scrubber, report)
    except Exception as exc:  # keep only the structural fields, which need no scrubbing
        log_event(logger, logging.WARNING, "envelope header scrub failed, fields dropped", error=type(exc).__name__)
        envelope.headers = structural_fields(envelope.headers)
    return failed, unscannable


def _label(item: Item) -> str:
    """The item type to log: the type when it is a plain name, else a placeholder (it is the client's text)."""
    kind = item.headers.get("type")
    return str(kind) if is_item_type(kind) else "(invalid)"


__all__ = [
    "EVENT_TYPES",
    "JSON_ROOTS",
    "UNSCANNABLE_TYPES",
    "Verdict",
    "scrub_envelope",
    "scrub_envelope_headers",
    "scrub_item",
]
