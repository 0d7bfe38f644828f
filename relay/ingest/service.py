"""Accepting an envelope: validate, run the pipeline stages, rewrite, and hand to the spool."""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..config import LimitsConfig, ProjectConfig
from ..envelope import EVENT_ITEM_TYPES, JSON_ITEM_TYPES, Envelope, Item, JsonSummary, summarize
from ..envelope.categories import CONTAINER_CONTENT_TYPE
from ..errors import HttpError, InvalidItemJson, SpoolFull, Unavailable
from ..logs import log_event, log_failure
from ..outcomes import Outcome, Outcomes, Reason
from ..pipeline import ProcessingContext, Stage
from ..ratelimit import render_rate_limits
from ..routing import Router
from ..spool import Entry, Spool
from ..units import format_size
from .auth import Auth

logger = logging.getLogger("relay.ingest")

QUEUE_FULL_RETRY_AFTER = "10"

# An event id already in Sentry's form (what SDKs send) needs no parsing: `uuid.UUID(...).hex` is itself.
_CANONICAL_EVENT_ID = re.compile(r"[0-9a-f]{32}")

# Checks large JSON payloads off the event loop (in the scrub child process), one summary per payload.
JsonChecker = Callable[[list[bytes]], Awaitable[list[JsonSummary]]]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The answer for an accepted envelope: the event id (if any) and headers for the SDK."""

    event_id: str | None
    headers: dict[str, str] = field(default_factory=dict)


class IngestService:
    """The one path every ingest endpoint takes into the relay."""

    def __init__(
        self,
        limits: LimitsConfig,
        router: Router,
        stages: Sequence[Stage],
        spool: Spool,
        outcomes: Outcomes,
        clock: Clock,
        *,
        check_json: JsonChecker | None,
        large_bytes: int,  # JSON payloads above this go to `check_json` (the scrub child's threshold)
    ) -> None:
        self._limits = limits
        self._router = router
        self._stages = list(stages)
        self._spool = spool
        self._outcomes = outcomes
        self._clock = clock
        self._check_json = check_json
        self._large_bytes = large_bytes

    async def accept(self, envelope: Envelope, project_id: int, project: ProjectConfig | None, auth: Auth) -> Accepted:
        """Take responsibility for an envelope, or raise HttpError; every item gets exactly one outcome."""
        categories = envelope.categories()
        self._outcomes.received(categories)
        target = self._router.target_for(project_id, project, auth.public_key)
        try:
            event_id = self._validate(envelope, await self._check_large(envelope))
        except HttpError as exc:
            reason = Reason.TOO_LARGE if exc.status == 413 else Reason.INVALID_JSON
            self._outcomes.record(Outcome.INVALID, reason, categories, target)
            raise
        ctx = ProcessingContext(envelope, project_id, project, auth.public_key, target, self._outcomes)
        ctx.drop(_duplicate_containers(envelope), Outcome.INVALID, Reason.DUPLICATE_ITEM)
        for stage in self._stages:
            try:
                await stage.process(ctx)
            except Exception as exc:
                # A broken stage must not let unprocessed data through: drop what is left.
                log_failure(logger, "pipeline stage failed", exc, stage=stage.name, event_id=event_id)
                ctx.drop(list(envelope.items), Outcome.INVALID, Reason.INTERNAL_ERROR)
                raise HttpError(500, f"internal error in stage {stage.name}; the envelope was dropped") from None
        headers: dict[str, str] = {}
        if ctx.rate_limits:
            headers["X-Sentry-Rate-Limits"] = render_rate_limits(ctx.rate_limits)
        if not envelope.items:
            if ctx.rate_limited_items:
                headers["Retry-After"] = str(max(1, math.ceil(max(left for _, left in ctx.rate_limits))))
                raise HttpError(
                    429, "Sentry dropped data due to a quota or internal rate limit being reached.", headers
                )
            return Accepted(event_id, headers)
        self._router.rewrite(envelope, target)
        entry = Entry(
            target=target,
            body=envelope.serialize(),
            categories=tuple(envelope.categories()),
            received_at=self._clock.time(),
            event_id=event_id,
            client=auth.client,
            client_reports_only=all(item.type == "client_report" for item in envelope.items),
        )
        try:
            await self._spool.push(entry)
        except SpoolFull as exc:
            self._outcomes.record_entries(Outcome.DROPPED, Reason.QUEUE_OVERFLOW, [entry])
            # (per envelope at DEBUG: the spool logs a full queue, a full disk or a lost file once per episode)
            log_event(logger, logging.DEBUG, "queue full, envelope refused", event_id=event_id, detail=str(exc))
            detail = f"the relay's queue can't take the envelope now ({exc}); retry later"
            raise Unavailable(503, detail, {"Retry-After": QUEUE_FULL_RETRY_AFTER}) from None
        return Accepted(event_id, headers)

    async def _check_large(self, envelope: Envelope) -> dict[int, JsonSummary]:
        """Summaries of the large JSON payloads, by item index, made off the event loop.

        Empty when there are none, or when the checker fails: `_validate` then parses them here, as it does
        small ones. Payloads over their size limit are left to `_validate` to refuse unparsed.
        """
        if self._check_json is None:
            return {}
        large = [
            index
            for index, item in enumerate(envelope.items)
            if item.type in JSON_ITEM_TYPES
            and len(item.payload) > self._large_bytes
            and not (item.type in EVENT_ITEM_TYPES and len(item.payload) > self._limits.max_event_size)
        ]
        if not large:
            return {}
        try:
            summaries = await self._check_json([envelope.items[index].payload for index in large])
        except Exception as exc:  # the child is unavailable: validate on the loop rather than refuse
            log_event(logger, logging.WARNING, "large payload check unavailable, parsing here", error=repr(exc))
            return {}
        return dict(zip(large, summaries, strict=True))

    def _validate(self, envelope: Envelope, checked: dict[int, JsonSummary]) -> str | None:
        """Check item sizes and JSON payloads (`checked` holds summaries made elsewhere, by item index);
        return the event id to answer with."""
        limits = self._limits
        event_id = envelope.event_id
        if "event_id" in envelope.headers:
            event_id = _valid_event_id(envelope.headers["event_id"], "envelope header event_id")
            envelope.headers["event_id"] = event_id
        needs_event_id = False
        for index, item in enumerate(envelope.items):
            size = len(item.payload)
            kind = item.type
            if kind in EVENT_ITEM_TYPES and size > limits.max_event_size:
                raise HttpError(
                    413,
                    f"item {index} ({kind}) is {size} bytes, over limits.max_event_size "
                    f"({format_size(limits.max_event_size)})",
                )
            if kind == "attachment" and size > limits.max_attachment_size:
                raise HttpError(
                    413,
                    f"item {index} (attachment) is {size} bytes, over limits.max_attachment_size "
                    f"({format_size(limits.max_attachment_size)})",
                )
            if kind in JSON_ITEM_TYPES and size:
                summary = checked.get(index)
                if summary is None:
                    summary = _summary_or_400(item, index, kind)
                if summary.error is not None:
                    raise HttpError(400, f"item {index} ({kind}) payload is not valid JSON: {summary.error}")
                if kind in EVENT_ITEM_TYPES:
                    if not summary.is_object:
                        raise HttpError(400, f"item {index} ({kind}) payload must be a JSON object")
                    if event_id is None and summary.event_id is not None:
                        event_id = _valid_event_id(summary.event_id, f"item {index} ({kind}) event_id")
            needs_event_id = needs_event_id or kind in EVENT_ITEM_TYPES
        if event_id is None and needs_event_id:
            event_id = uuid.uuid4().hex  # as Sentry does for an event without an id
        if event_id is not None:
            envelope.headers["event_id"] = event_id
        return event_id


def _valid_event_id(value: Any, what: str) -> str:
    """Event ids are UUIDs; Sentry writes them as 32 lowercase hex digits."""
    if isinstance(value, str) and _CANONICAL_EVENT_ID.fullmatch(value):
        return value
    try:
        return uuid.UUID(str(value)).hex if isinstance(value, str) else _bad_event_id(what)
    except ValueError:
        return _bad_event_id(what)


def _bad_event_id(what: str) -> str:
    raise HttpError(400, f"{what} is not a valid event id (expected a UUID)")


def _summary_or_400(item: Item, index: int, kind: str) -> JsonSummary:
    try:
        return summarize(item.json())  # the parse is kept on the item: later stages don't parse it again
    except InvalidItemJson as exc:
        raise HttpError(400, f"item {index} ({kind}) payload is not valid JSON: {exc.reason}") from None


def _duplicate_containers(envelope: Envelope) -> list[Item]:
    """Every container of a type the envelope holds more than one of: SDKs batch a type into one container,
    and Sentry's Relay refuses an envelope's containers of a type when there are two (invalid, duplicate_item)."""
    by_type: dict[str, list[Item]] = {}
    for item in envelope.items:
        content_type = item.headers.get("content_type")
        if isinstance(content_type, str) and content_type.startswith(CONTAINER_CONTENT_TYPE):
            by_type.setdefault(item.type, []).append(item)
    return [item for items in by_type.values() if len(items) > 1 for item in items]
