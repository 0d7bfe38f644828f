"""The pipeline stage for inbound filters and fingerprint rules: first in line, before sampling and scrubbing."""

from __future__ import annotations

from ..config import Config
from ..envelope.event import EventView
from ..outcomes import Outcome
from ..pipeline import ProcessingContext
from .fingerprints import fingerprint_for
from .inbound import matching_filter
from .spans import filter_spans

_FILTERED_TYPES = frozenset({"event", "transaction"})


class FilterStage:
    """Drops events a filter matches (outcome `filtered`, reason `filter:<name>`), with their attachments,
    and sets fingerprints from the central rules on the events that stay."""

    name = "filters"

    def __init__(self, config: Config) -> None:
        self._config = config

    async def process(self, ctx: ProcessingContext) -> None:
        """Filter, then fingerprint, the envelope's event or transaction."""
        filters = self._config.filters_for(ctx.project)
        rules = self._config.fingerprints_for(ctx.project)
        if not filters.active and not rules:
            return
        if filters.active:
            filter_spans(ctx, filters)  # streamed spans, as the transaction each belongs to
        primary = next((item for item in ctx.envelope.items if item.type in _FILTERED_TYPES), None)
        if primary is None:
            return
        event = primary.json_object()
        if event is None:
            return  # not an object: the scrub stage reports it
        if filters.active:
            name = matching_filter(filters, primary.category, EventView(event))
            if name is not None:
                doomed = [primary, *ctx.envelope.dependents({primary.category})]
                ctx.drop(doomed, Outcome.FILTERED, f"filter:{name}")
                return
        if rules and primary.type == "event":
            fingerprint = fingerprint_for(rules, event)
            if fingerprint is not None:
                event["fingerprint"] = fingerprint
                primary.set_json(event)
