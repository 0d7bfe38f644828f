"""The pipeline stage that scrubs every item before anything is queued or written."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..envelope import Item
from ..logs import log_event
from ..metrics import Metrics
from ..outcomes import Outcome, Reason
from ..pipeline import ProcessingContext
from .audit import Auditor, Redaction, ScrubReport
from .auditlog import AuditLog
from .engine import Scrubber, ScrubError
from .items import Verdict, scrub_envelope_headers, scrub_item
from .registry import ScrubberRegistry

logger = logging.getLogger("relay.scrub")

# Envelopes with an item this big are scrubbed on a worker thread (with their own scrubber twins), so a
# 1 MB frame-vars dump never holds the event loop for the second it takes.
OFFLOAD_BYTES = 256 * 1024
OFFLOAD_PAUSE = 0.0005  # seconds the worker sleeps after each millisecond of scrubbing (see Scrubber.pause)


class ScrubStage:
    """Scrubs items in place; fails closed: an item that can't be scrubbed is dropped, never forwarded.

    The rules are one `ScrubberRegistry`, replaced whole by `swap` (a rule reload); each envelope
    reads it once, so it is scrubbed entirely by the old rules or entirely by the new ones.
    """

    name = "scrub"

    def __init__(
        self, registry: ScrubberRegistry, metrics: Metrics | None = None, audit_log: AuditLog | None = None
    ) -> None:
        self.registry = registry
        self._metrics = metrics
        self._audit_log = audit_log
        self._executor: ThreadPoolExecutor | None = None
        self._counters: dict[tuple[str, str, str], Any] = {}  # metric children, looked up once
        self._twins: weakref.WeakKeyDictionary[Scrubber | Auditor, Scrubber | Auditor] = weakref.WeakKeyDictionary()

    def swap(self, registry: ScrubberRegistry) -> None:
        """Put new rules in force for every envelope that starts scrubbing from now on."""
        self.registry = registry

    async def process(self, ctx: ProcessingContext) -> None:
        """Scrub every item and the envelope header's trace context."""
        registry = self.registry
        scrubber = registry.for_project(ctx.project)
        if not scrubber.rules:
            return  # `rules: []`: the project opted out of scrubbing; items pass unchanged
        auditor = registry.auditor_for(ctx.project)
        report = ScrubReport() if self._metrics is not None or self._audit_log is not None else None
        if any(len(item.payload) > OFFLOAD_BYTES for item in ctx.envelope.items):
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrub-large")
            twin = self._twin(scrubber)
            audit_twin = self._twin(auditor) if auditor is not None else None
            assert isinstance(twin, Scrubber) and (audit_twin is None or isinstance(audit_twin, Auditor))
            loop = asyncio.get_running_loop()
            failed, unscannable = await loop.run_in_executor(
                self._executor, self._scrub_envelope, ctx, twin, audit_twin, report
            )
        else:
            failed, unscannable = self._scrub_envelope(ctx, scrubber, auditor, report)
        ctx.drop(failed, Outcome.INVALID, Reason.SCRUB_FAILED)
        ctx.drop(unscannable, Outcome.FILTERED, Reason.UNSCANNABLE)
        if report is not None and (report.enforced or report.audited):
            self._account(ctx, report)

    def close(self) -> None:
        """Stop the large-envelope thread (after the work it has); idempotent."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _twin(self, original: Scrubber | Auditor) -> Scrubber | Auditor:
        """The worker thread's own copy of a scrubber or auditor (caches aren't shared across threads)."""
        twin = self._twins.get(original)
        if twin is None:
            twin = self._twins[original] = original.twin(OFFLOAD_PAUSE)
        return twin

    @staticmethod
    def _scrub_envelope(
        ctx: ProcessingContext, scrubber: Scrubber, auditor: Auditor | None, report: ScrubReport | None
    ) -> tuple[list[Item], list[Item]]:
        """Scrub items in place; return those that failed and those that can't be scanned (and aren't allowed)."""
        forward_unscannable = ctx.project is not None and ctx.project.forward_unscannable
        failed: list[Item] = []
        unscannable: list[Item] = []
        for item in ctx.envelope.items:
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
            scrub_envelope_headers(ctx.envelope, scrubber)
        except Exception as exc:
            log_event(logger, logging.WARNING, "trace header scrub failed, header dropped", error=repr(exc))
            ctx.envelope.headers.pop("trace", None)
        return failed, unscannable

    def _account(self, ctx: ProcessingContext, report: ScrubReport) -> None:
        """Count redactions per rule, log audit findings, and append to the audit log."""
        if self._metrics is not None:
            project = str(ctx.project_id)
            counts: Counter[tuple[str, str]] = Counter((r.rule, r.action) for r in report.enforced)
            counts.update((r.rule, f"audit:{r.action}") for r in report.audited)
            children = self._counters
            for (rule, action), count in counts.items():
                counter = children.get((project, rule, action))
                if counter is None:
                    counter = children[(project, rule, action)] = self._metrics.scrub_redactions.labels(
                        project, rule, action
                    )
                counter.inc(count)
        event_id = ctx.envelope.event_id
        if report.audited:
            log_event(
                logger,
                logging.INFO,
                "audit rules would redact",
                project=ctx.project_id,
                event_id=event_id,
                redactions=[_describe(r) for r in report.audited],
            )
        if self._audit_log is not None:
            self._audit_log.write(ctx.project_id, event_id, report.enforced)
            self._audit_log.write(ctx.project_id, event_id, report.audited, audit=True)


def _describe(redaction: Redaction) -> dict[str, str]:
    return {
        "item_type": redaction.item_type,
        "path": redaction.path,
        "rule": redaction.rule,
        "action": redaction.action,
    }
