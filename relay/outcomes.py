"""Outcomes: every item the relay accepts ends in exactly one, and each is counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from .logs import log_event
from .metrics import Metrics

if TYPE_CHECKING:
    from .routing import Target
    from .spool import Entry


# Categories whose Sentry quantity is bytes, not items.
BYTE_CATEGORIES = frozenset({"attachment"})


class Outcome(StrEnum):
    """How an item's journey through the relay ended."""

    FORWARDED = "forwarded"
    FILTERED = "filtered"
    FILTERED_SAMPLING = "filtered_sampling"
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"
    DROPPED = "dropped"


class Reason(StrEnum):
    """Why an item was not forwarded (`none` when it was)."""

    NONE = "none"
    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    QUEUE_OVERFLOW = "queue_overflow"
    UPSTREAM_REJECTED = "upstream_rejected"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_LIMITED_ON_SEND = "upstream_limited_on_send"  # the upstream answered 429: final, as in Relay
    RETRY_EXHAUSTED = "retry_exhausted"
    SHUTDOWN = "shutdown"
    SCRUB_FAILED = "scrub_failed"
    EXPIRED = "expired"
    UNSCANNABLE = "unscannable"
    INTERNAL_ERROR = "internal_error"
    DUPLICATE_ITEM = "duplicate_item"  # a second container of one type in an envelope


# Reasons are `Reason` values, or names from the config that the metric's cardinality can afford:
# a sampling rule's id, a quota's reason code, `filter:<name>`.
OutcomeListener = Callable[[Outcome, str, str, int, "Target | None"], None]


logger = logging.getLogger("relay.outcomes")
# Drops logged at debug per second at most; past it they are counted and the count logged with the next.
DROP_LOG_RATE = 20


class _DropLog:
    """Debug lines for dropped items, at most DROP_LOG_RATE a second, so a flood can't fill the log."""

    __slots__ = ("_clock", "_logged", "_second", "_suppressed")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._second = -1
        self._logged = 0
        self._suppressed = 0

    def write(self, outcome: Outcome, reason: str, category: str, quantity: int, target: Target | None) -> None:
        second = int(self._clock())
        if second != self._second:
            self._second, self._logged = second, 0
        if self._logged >= DROP_LOG_RATE:
            self._suppressed += 1
            return
        self._logged += 1
        fields: dict[str, object] = {"outcome": outcome.value, "reason": reason, "category": category,
                                     "quantity": quantity}  # fmt: skip
        if target is not None:
            fields["project"] = target.project_id
        if self._suppressed:
            fields["not_logged_before"], self._suppressed = self._suppressed, 0
        log_event(logger, logging.DEBUG, "items dropped", **fields)


class Outcomes:
    """Records outcomes in `relay_outcomes_total` and tells listeners (client reports, audits); drops are
    also logged at debug (rate limited)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._listeners: list[OutcomeListener] = []
        self._drops = _DropLog()

    def subscribe(self, listener: OutcomeListener) -> None:
        """Call `listener(outcome, reason, category, quantity, target)` for every recorded outcome."""
        self._listeners.append(listener)

    def received(self, categories: Iterable[str]) -> None:
        """Count items that entered the relay, one per category entry."""
        counter = self._metrics.items_received_by
        for category in categories:
            counter(category).inc()

    def record(
        self,
        outcome: Outcome,
        reason: str,
        categories: Iterable[str],
        target: Target | None = None,
        sizes: Sequence[int] | None = None,
    ) -> None:
        """Record one outcome per item category given; `target` is the upstream the items were bound for.

        The metric counts items. Listeners get Sentry's quantities: bytes for attachments (from `sizes`,
        one per category entry, when known), items for everything else.
        """
        counts: dict[str, int] = {}
        quantities: dict[str, int] = {}
        for index, category in enumerate(categories):
            counts[category] = counts.get(category, 0) + 1
            size = sizes[index] if sizes is not None and category in BYTE_CATEGORIES else 1
            quantities[category] = quantities.get(category, 0) + size
        debug = outcome is not Outcome.FORWARDED and logger.isEnabledFor(logging.DEBUG)
        for category, count in counts.items():
            self._metrics.outcomes_by(outcome.value, str(reason), category).inc(count)
            for listener in self._listeners:
                listener(outcome, str(reason), category, quantities[category], target)
            if debug:
                self._drops.write(outcome, str(reason), category, quantities[category], target)

    def record_entries(self, outcome: Outcome, reason: str, entries: Iterable[Entry]) -> None:
        """Record the outcome of spooled envelopes, item by item.

        Attachment bytes are read from a body only for a discard that someone listens to: a forwarded
        envelope's body is never parsed again for its outcome.
        """
        sizes_needed = outcome is not Outcome.FORWARDED and bool(self._listeners)
        for entry in entries:
            sizes = entry.item_sizes() if sizes_needed else None
            self.record(outcome, reason, entry.categories, entry.target, sizes)
