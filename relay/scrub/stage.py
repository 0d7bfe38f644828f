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
from .engine import Scrubber
from .items import scrub_envelope
from .offload import LARGE_BYTES, ChildProcess, ChildTimeout, Job, scrub_job
from .registry import ScrubberRegistry

logger = logging.getLogger("relay.scrub")
_CHILD_START = 10.0  # seconds a new scrubbing child may take to start and compile its rules

# Envelopes with an item over LARGE_BYTES are scrubbed in a low-priority child process (see scrub.offload),
# so a 1 MB frame-vars dump never holds up small events for the second it takes. If the child can't be
# used, a worker thread (with its own scrubber twins, yielding the GIL every millisecond) does it instead.
OFFLOAD_PAUSE = 0.0005  # seconds the worker thread sleeps after each millisecond of scrubbing


class ScrubStage:
    """Scrubs items in place; fails closed: an item that can't be scrubbed is dropped, never forwarded.

    The rules are one `ScrubberRegistry`, replaced whole by `swap` (a rule reload); each envelope
    reads it once, so it is scrubbed entirely by the old rules or entirely by the new ones.
    """

    name = "scrub"

    def __init__(
        self,
        registry: ScrubberRegistry,
        metrics: Metrics | None = None,
        audit_log: AuditLog | None = None,
        child: ChildProcess | None = None,
    ) -> None:
        self.registry = registry
        self._metrics = metrics
        self._audit_log = audit_log
        self._executor: ThreadPoolExecutor | None = None
        self._child = child
        self._generation = 0
        self._counters: dict[tuple[str, str, str], Any] = {}  # metric children, looked up once
        self._twins: weakref.WeakKeyDictionary[Scrubber | Auditor, Scrubber | Auditor] = weakref.WeakKeyDictionary()

    @property
    def child(self) -> ChildProcess:
        """The child process for large envelopes (ingest validation shares it, see app.create_app); this stage
        closes it."""
        if self._child is None:
            self._child = ChildProcess(self.registry.config)
        return self._child

    def swap(self, registry: ScrubberRegistry) -> None:
        """Put new rules in force for every envelope that starts scrubbing from now on."""
        self.registry = registry
        self._generation += 1

    async def process(self, ctx: ProcessingContext) -> None:
        """Scrub every item and the envelope header."""
        registry = self.registry
        scrubber = registry.for_project(ctx.project)
        if not scrubber.rules:
            return  # `rules: []`: the project opted out of scrubbing; items pass unchanged
        auditor = registry.auditor_for(ctx.project)
        report = ScrubReport() if self._metrics is not None or self._audit_log is not None else None
        if any(len(item.payload) > LARGE_BYTES or item.type in _EXPANDING for item in ctx.envelope.items):
            failed, unscannable = await self._offload(ctx, registry, report)
        else:
            failed, unscannable = scrub_envelope(ctx.envelope, _forward_unscannable(ctx), scrubber, auditor, report)
        _with_replay_events(ctx.envelope.items, failed, unscannable)
        ctx.drop(failed, Outcome.INVALID, Reason.SCRUB_FAILED)
        ctx.drop(unscannable, Outcome.FILTERED, Reason.UNSCANNABLE)
        if report is not None and (report.enforced or report.audited):
            self._account(ctx, report)

    async def _offload(
        self, ctx: ProcessingContext, registry: ScrubberRegistry, report: ScrubReport | None
    ) -> tuple[list[Item], list[Item]]:
        """Scrub a large envelope in the child process (or, failing that, on the worker thread)."""
        envelope = ctx.envelope
        job = Job(
            registry.config,
            registry.texts(),
            self._generation,
            ctx.project_id,
            [item.bare() for item in envelope.items],
            envelope.headers,
            _forward_unscannable(ctx),
            report is not None,
        )
        scrubber = registry.for_project(ctx.project)
        # The child's bound: its items' own time bounds, twice, and the start of a new child.
        bound = 2 * sum(scrubber.time_limit_for(len(item.payload)) for item in envelope.items) + _CHILD_START
        try:
            result = await self.child.call(scrub_job, job, bound)
        except ChildTimeout as exc:  # a stuck child was killed: its items fail closed, not onto a thread
            log_event(logger, logging.WARNING, "large-envelope scrub timed out, items dropped", error=str(exc))
            return list(envelope.items), []
        except Exception as exc:  # no child (or it died): the thread does it; nothing is lost either way
            log_event(logger, logging.WARNING, "large-envelope scrub process unavailable, using a thread",
                      error=repr(exc))  # fmt: skip
            return await self._on_thread(ctx, registry, report)
        envelope.items = result.items
        envelope.headers = result.headers
        if report is not None and result.report is not None:
            report.enforced.extend(result.report.enforced)
            report.audited.extend(result.report.audited)
        return [result.items[i] for i in result.failed], [result.items[i] for i in result.unscannable]

    async def _on_thread(
        self, ctx: ProcessingContext, registry: ScrubberRegistry, report: ScrubReport | None
    ) -> tuple[list[Item], list[Item]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrub-large")
        auditor = registry.auditor_for(ctx.project)
        twin = self._twin(registry.for_project(ctx.project))
        audit_twin = self._twin(auditor) if auditor is not None else None
        assert isinstance(twin, Scrubber) and (audit_twin is None or isinstance(audit_twin, Auditor))
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, scrub_envelope, ctx.envelope, _forward_unscannable(ctx), twin, audit_twin, report
        )

    def close(self) -> None:
        """Stop the large-envelope process and thread (after the work they have); idempotent."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if self._child is not None:
            self._child.close()

    def _twin(self, original: Scrubber | Auditor) -> Scrubber | Auditor:
        """The worker thread's own copy of a scrubber or auditor (caches aren't shared across threads)."""
        twin = self._twins.get(original)
        if twin is None:
            twin = self._twins[original] = original.twin(OFFLOAD_PAUSE)
        return twin

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


def _with_replay_events(items: list[Item], failed: list[Item], unscannable: list[Item]) -> None:
    """A replay event whose recording (or video) is dropped goes with it, for the same reason: Sentry rejects a
    replay event without its recording, and the SDK would believe its replay was sent."""
    for dropped in (failed, unscannable):
        if any(item.type in _REPLAY_BODIES for item in dropped):
            taken = {id(item) for item in (*failed, *unscannable)}
            dropped.extend(item for item in items if item.type == "replay_event" and id(item) not in taken)


_REPLAY_BODIES = frozenset({"replay_recording", "replay_video"})
# Compressed inside, whatever their size: a 10 KB replay recording is 1 MB of rrweb JSON (75 ms to scrub), and
# could be 10 MB. They are scrubbed in the child, never on the event loop.
_EXPANDING = frozenset({"replay_recording"})


def _forward_unscannable(ctx: ProcessingContext) -> bool:
    return ctx.project is not None and ctx.project.forward_unscannable
