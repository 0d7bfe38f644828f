"""The pipeline stage that scrubs every item before anything is queued or written."""

from __future__ import annotations

import logging
from collections import Counter

from ..logs import log_event
from ..metrics import Metrics
from ..outcomes import Outcome, Reason
from ..pipeline import ProcessingContext
from .audit import Redaction, ScrubReport
from .auditlog import AuditLog
from .engine import ScrubError
from .items import Verdict, scrub_envelope_headers, scrub_item
from .registry import ScrubberRegistry

logger = logging.getLogger("relay.scrub")


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
        forward_unscannable = ctx.project is not None and ctx.project.forward_unscannable
        failed = []
        unscannable = []
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
        ctx.drop(failed, Outcome.INVALID, Reason.SCRUB_FAILED)
        ctx.drop(unscannable, Outcome.FILTERED, Reason.UNSCANNABLE)
        if report is not None and (report.enforced or report.audited):
            self._account(ctx, report)

    def _account(self, ctx: ProcessingContext, report: ScrubReport) -> None:
        """Count redactions per rule, log audit findings, and append to the audit log."""
        if self._metrics is not None:
            project = str(ctx.project_id)
            counts: Counter[tuple[str, str]] = Counter((r.rule, r.action) for r in report.enforced)
            counts.update((r.rule, f"audit:{r.action}") for r in report.audited)
            for (rule, action), count in counts.items():
                self._metrics.scrub_redactions.labels(project, rule, action).inc(count)
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
