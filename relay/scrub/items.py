"""Scrubbing each envelope item type: events with `_meta`, other JSON at a named root, text, or nothing."""

from __future__ import annotations

import enum
import logging
from typing import Any

import orjson

from ..envelope import Envelope, Item
from ..errors import InvalidItemJson
from ..logs import log_event
from .audit import Auditor, ScrubReport, redactions_in, text_redactions
from .engine import Remark, Scrubber, ScrubError

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
# Binary by nature: can't be scanned, so dropped unless the project opts in.
UNSCANNABLE_TYPES = frozenset({"replay_recording", "replay_video"})
PASSTHROUGH_TYPES = frozenset({"client_report"})  # counts only, no personal data
_TEXT_SUFFIXES = (".txt", ".log", ".json", ".csv", ".xml", ".yaml", ".yml", ".html", ".md", ".ndjson")
_TRACE_HEADER_ROOT = "@envelope\x1ftrace"


class Verdict(enum.Enum):
    """What happened to an item."""

    SCRUBBED = "scrubbed"
    UNSCANNABLE = "unscannable"


def scrub_envelope_headers(envelope: Envelope, scrubber: Scrubber) -> None:
    """The header's trace context (`user_id`, `user_segment`) is personal data too."""
    trace = envelope.headers.get("trace")
    if isinstance(trace, dict):
        envelope.headers["trace"] = scrubber.scrub(trace, _TRACE_HEADER_ROOT)


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
        scrubbed = self.scrubber.scrub_event(event, remarks, self.limit)
        if self.report is not None:
            self.report.enforced.extend(redactions_in(remarks, kind))
            if self.auditor is not None:
                self.report.audited.extend(self.auditor.event(scrubbed, kind, self.limit))
        return scrubbed

    def payload(self, payload: Any, root: str, kind: str) -> Any:
        meta: dict[str, Any] | None = {} if self.report is not None else None
        scrubbed = self.scrubber.scrub(payload, root, meta, self.limit)
        if self.report is not None:
            self.report.enforced.extend(redactions_in(meta, kind, root.lstrip("@")))
            if self.auditor is not None:
                self.report.audited.extend(self.auditor.payload(scrubbed, root, kind, self.limit))
        return scrubbed

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
    """Scrub one item in place; raise ScrubError when it can't be done safely.

    With a `report`, the redactions made (and, with an `auditor`, those audit rules would make) are added.
    """
    scrubbing = _Scrubbing(scrubber, report, auditor, scrubber.time_limit_for(len(item.payload)))
    kind = item.type
    if kind in PASSTHROUGH_TYPES or not item.payload:
        return Verdict.SCRUBBED
    if kind in EVENT_TYPES:
        event = _load(item)
        if not isinstance(event, dict):
            raise ScrubError(f"{kind} payload is not a JSON object")
        item.set_json(scrubbing.event(event, kind))
        return Verdict.SCRUBBED
    root = JSON_ROOTS.get(kind)
    if root is not None:
        item.set_json(scrubbing.payload(_load(item), root, kind))
        return Verdict.SCRUBBED
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
    """Scrub every item and the trace header in place; return the items that failed and those that can't be
    scanned (and may not be forwarded unscanned). Never raises: a failing item is the caller's to drop."""
    failed: list[Item] = []
    unscannable: list[Item] = []
    for item in envelope.items:
        try:
            verdict = scrub_item(item, scrubber, report, auditor)
        except ScrubError as exc:
            log_event(logger, logging.WARNING, "scrub failed, item dropped", item_type=item.type, error=str(exc))
            failed.append(item)
            continue
        except Exception as exc:  # fail closed on bugs too
            log_event(logger, logging.ERROR, "scrub crashed, item dropped", item_type=item.type, error=repr(exc))
            failed.append(item)
            continue
        if verdict is Verdict.UNSCANNABLE and not forward_unscannable:
            unscannable.append(item)
    try:
        scrub_envelope_headers(envelope, scrubber)
    except Exception as exc:
        log_event(logger, logging.WARNING, "trace header scrub failed, header dropped", error=repr(exc))
        envelope.headers.pop("trace", None)
    return failed, unscannable
