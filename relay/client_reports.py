"""The relay's own discards, sent upstream as `client_report` items so the tracker's stats show them.

Reports use the format SDKs send (`discarded_events` with SDK discard reasons), which every Sentry
accepts from any client. Discards the upstream decided itself (it rejected the envelope) are left out,
since it counted them already.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import orjson

from .clock import Clock
from .errors import SpoolFull
from .logs import log_event
from .outcomes import Outcome, Outcomes, Reason
from .routing import Target
from .spool import Entry, Spool
from .tasks import stop_task

logger = logging.getLogger("relay.outcomes")

_MAX_KEYS = 10_000  # (target, reason, category) counters held before an early flush

# Our outcome (and reason) -> the SDK discard reason Sentry's stats pages know.
_SDK_REASONS: dict[Outcome, str] = {
    Outcome.FILTERED_SAMPLING: "sample_rate",
    Outcome.RATE_LIMITED: "ratelimit_backoff",
    Outcome.FILTERED: "event_processor",
    Outcome.INVALID: "invalid",
    Outcome.DROPPED: "send_error",
}
_DROPPED_REASONS = {
    Reason.QUEUE_OVERFLOW.value: "queue_overflow",
    Reason.EXPIRED.value: "network_error",
    Reason.RETRY_EXHAUSTED.value: "network_error",
}
_NOT_REPORTED = frozenset({Reason.UPSTREAM_REJECTED.value})


def sdk_reason(outcome: Outcome, reason: str) -> str | None:
    """The client report reason for one of our outcomes, or None if it is not reported."""
    if outcome is Outcome.FORWARDED or reason in _NOT_REPORTED:
        return None
    if outcome is Outcome.DROPPED:
        return _DROPPED_REASONS.get(reason, "send_error")
    return _SDK_REASONS.get(outcome)


class ClientReporter:
    """Counts discards per upstream target and spools one client report per target every interval."""

    def __init__(self, outcomes: Outcomes, spool: Spool, clock: Clock, interval: float) -> None:
        self._outcomes = outcomes
        self._spool = spool
        self._clock = clock
        self._interval = interval
        self._counts: dict[tuple[Target, str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        outcomes.subscribe(self._count)

    def _count(self, outcome: Outcome, reason: str, category: str, quantity: int, target: Target | None) -> None:
        if target is None or category == "internal":  # reports about reports would never end
            return
        name = sdk_reason(outcome, reason)
        if name is None:
            return
        key = (target, name, category)
        self._counts[key] = self._counts.get(key, 0) + quantity
        if len(self._counts) > _MAX_KEYS and self._task is not None:
            asyncio.get_running_loop().create_task(self.flush(), name="client-report-flush")

    def pending(self) -> int:
        """Discards counted and not yet spooled."""
        return sum(self._counts.values())

    async def start(self) -> None:
        """Start the periodic flush."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="client-reports")

    async def close(self) -> None:
        """Stop the timer and spool what was counted (the spool flushes or keeps it); idempotent."""
        task, self._task = self._task, None
        await stop_task(task)
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        """Spool one client report per target with everything counted so far."""
        counts, self._counts = self._counts, {}
        by_target: dict[Target, list[dict[str, object]]] = {}
        for (target, reason, category), quantity in counts.items():
            by_target.setdefault(target, []).append({"reason": reason, "category": category, "quantity": quantity})
        now = self._clock.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        for target, discarded in by_target.items():
            payload = orjson.dumps({"timestamp": stamp, "discarded_events": discarded})
            body = b"".join(
                [
                    orjson.dumps({"sent_at": stamp, "dsn": target.dsn}),
                    b"\n",
                    orjson.dumps({"type": "client_report", "length": len(payload)}),
                    b"\n",
                    payload,
                    b"\n",
                ]
            )
            entry = Entry(target, body, ("internal",), now, client="relay", client_reports_only=True)
            self._outcomes.received(entry.categories)  # so every item counted out was counted in
            try:
                await self._spool.push(entry)
            except SpoolFull:
                self._outcomes.record(Outcome.DROPPED, Reason.QUEUE_OVERFLOW, entry.categories, target)
                log_event(logger, logging.WARNING, "spool full, client report dropped", upstream=target.base_url)


__all__ = ["ClientReporter", "sdk_reason"]
