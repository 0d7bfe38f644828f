"""The processing pipeline: ordered stages between ingest and the spool.

Scrubbing, sampling and quotas plug in here as stages. Each stage may drop items; a dropped
item gets its outcome at once, so every item still ends in exactly one outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .config import ProjectConfig
from .envelope import Envelope, Item
from .outcomes import Outcome, Outcomes
from .ratelimit import RateLimit
from .routing import Target


@dataclass(slots=True)
class ProcessingContext:
    """What a stage knows about the envelope it processes, and how it drops items."""

    envelope: Envelope
    project_id: int
    project: ProjectConfig | None
    public_key: str
    target: Target
    outcomes: Outcomes
    # Limits that removed items here, announced to the SDK in X-Sentry-Rate-Limits.
    rate_limits: list[tuple[RateLimit, float]] = field(default_factory=list)
    rate_limited_items: int = 0

    def drop(self, items: Iterable[Item], outcome: Outcome, reason: str) -> None:
        """Remove items from the envelope and record their outcome."""
        doomed = {id(item) for item in items}
        if not doomed:
            return
        kept: list[Item] = []
        dropped: list[str] = []
        sizes: list[int] = []
        for item in self.envelope.items:
            if id(item) in doomed:
                quantity = item.quantity  # a container counts its inner items
                dropped.extend([item.category] * quantity)
                sizes.extend([len(item.payload)] * quantity)
            else:
                kept.append(item)
        self.envelope.items = kept
        if outcome is Outcome.RATE_LIMITED:
            self.rate_limited_items += len(dropped)
        self.outcomes.record(outcome, reason, dropped, self.target, sizes)


class Stage(Protocol):
    """One step of processing; the order of the stage list is the pipeline."""

    name: str

    async def process(self, ctx: ProcessingContext) -> None:
        """Inspect or change `ctx.envelope`, dropping items through `ctx.drop`."""
        ...
