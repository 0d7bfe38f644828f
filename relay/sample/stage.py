"""The pipeline stage that samples events and traces, before anything is spent on them."""

from __future__ import annotations

from ..config import Config
from ..outcomes import Outcome
from ..pipeline import ProcessingContext
from .sampler import TRACE_CATEGORIES, decide, needs_event, random_from_hex, trace_random

_EVENT_TYPES = frozenset({"event", "transaction", "security", "raw_security"})


class SamplingStage:
    """Drops sampled-out events and traces with outcome `filtered_sampling` and the deciding rule's id.

    A trace is sampled by the project that started it, as Sentry does: the one whose key is the trace header's
    `public_key`, when this relay has it (every service in the trace then decides alike); otherwise by the
    project the envelope came to.
    """

    name = "sampling"

    def __init__(self, config: Config | None = None) -> None:
        self._by_key = {key: p.sampling for p in config.projects for key in p.keys} if config is not None else {}

    async def process(self, ctx: ProcessingContext) -> None:
        """Decide once per envelope for its event or transaction, and once for standalone trace items."""
        project = ctx.project
        own = project.sampling if project is not None else None
        envelope = ctx.envelope
        trace = envelope.headers.get("trace")
        root_key = trace.get("public_key") if isinstance(trace, dict) else None
        root = self._by_key.get(root_key) if isinstance(root_key, str) else None
        if own is None and root is None:
            return
        primary = next((item for item in envelope.items if item.type in _EVENT_TYPES), None)
        traced = primary is None or primary.category == "transaction"
        config = (root or own) if traced else own
        if config is None:
            return
        if primary is not None:
            event = primary.json_object() if needs_event(config) else None
            category = primary.category
            if category == "transaction":
                value = trace_random(trace, None)
                if value is None:  # no trace header: the transaction's own trace context
                    event = event or primary.json_object()
                    value = trace_random(None, event)
            else:
                value = random_from_hex(envelope.event_id or (event or {}).get("event_id"))
            if value is None:
                return  # nothing to agree on: keep it rather than decide differently on every replica
            decision = decide(config, category, value, event, trace)
            if not decision.keep:
                doomed = [primary, *envelope.dependents({category})]
                if category == "transaction":
                    doomed += [i for i in envelope.items if i.category in TRACE_CATEGORIES and i is not primary]
                ctx.drop(doomed, Outcome.FILTERED_SAMPLING, decision.reason)
            return
        spans = [item for item in envelope.items if item.category in TRACE_CATEGORIES]
        if spans:  # standalone spans or profiles: the trace header decides
            value = trace_random(trace, None)
            if value is not None:
                decision = decide(config, "transaction", value, None, trace)
                if not decision.keep:
                    ctx.drop(spans, Outcome.FILTERED_SAMPLING, decision.reason)
