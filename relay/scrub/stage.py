"""The pipeline stage that scrubs every item before anything is queued or written."""

from __future__ import annotations

import logging

from ..logs import log_event
from ..outcomes import Outcome, Reason
from ..pipeline import ProcessingContext
from .engine import ScrubError
from .items import Verdict, scrub_envelope_headers, scrub_item
from .registry import ScrubberRegistry

logger = logging.getLogger("relay.scrub")


class ScrubStage:
    """Scrubs items in place; fails closed: an item that can't be scrubbed is dropped, never forwarded."""

    name = "scrub"

    def __init__(self, registry: ScrubberRegistry) -> None:
        self._registry = registry

    async def process(self, ctx: ProcessingContext) -> None:
        """Scrub every item and the envelope header's trace context."""
        scrubber = self._registry.for_project(ctx.project)
        if not scrubber.rules:
            return  # `rules: []`: the project opted out of scrubbing; items pass unchanged
        forward_unscannable = ctx.project is not None and ctx.project.forward_unscannable
        failed = []
        unscannable = []
        for item in ctx.envelope.items:
            try:
                verdict = scrub_item(item, scrubber)
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
