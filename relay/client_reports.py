"""The relay's own discards, sent upstream as `client_report` items so the tracker's stats show them.

Reports use the fields Sentry's Relay fills when it reports outcomes as client reports: `rate_limited_events`
with the quota's reason code, `filtered_events` with the inbound filter's name as Sentry spells it
(`browser-extensions`, `release-version`...), `filtered_sampling_events` with the sampling rule, and
`discarded_events` (SDK discard reasons) for the rest, which only the relay can know about (a full spool, an
item that couldn't be scrubbed). Discards the upstream decided itself (it rejected the envelope, or answered
429) are left out, since it counted them already.
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

# Outcomes with a field of their own, as Relay reports them; the reason is the outcome's own.
_FIELDS: dict[Outcome, str] = {
    Outcome.RATE_LIMITED: "rate_limited_events",
    Outcome.FILTERED_SAMPLING: "filtered_sampling_events",
}
# Our inbound filter names -> Sentry's filter keys (what its stats page groups `filtered_events` by).
_FILTER_KEYS = {
    "releases": "release-version",
    "environments": "environment",
    "transactions": "filtered-transaction",
    "exception_types": "error-message",
    "messages": "error-message",
    "browser_extensions": "browser-extensions",
    "localhost": "localhost",
    "web_crawlers": "web-crawlers",
}
# Other discards -> the SDK discard reason Sentry's stats pages know (in `discarded_events`).
_SDK_REASONS: dict[Outcome, str] = {
    Outcome.FILTERED: "event_processor",
    Outcome.INVALID: "invalid",
    Outcome.DROPPED: "send_error",
}
_DROPPED_REASONS = {
    Reason.QUEUE_OVERFLOW.value: "queue_overflow",
    Reason.EXPIRED.value: "network_error",
    Reason.RETRY_EXHAUSTED.value: "network_error",
}
_NOT_REPORTED = frozenset({Reason.UPSTREAM_REJECTED.value, Reason.UPSTREAM_LIMITED_ON_SEND.value})


def report_field(outcome: Outcome, reason: str) -> tuple[str, str] | None:
    """The client report field and reason for one of our outcomes, or None if it is not reported."""
    if outcome is Outcome.FORWARDED or reason in _NOT_REPORTED:
        return None
    field = _FIELDS.get(outcome)
    if field is not None:
        return field, reason
    if outcome is Outcome.FILTERED and reason.startswith("filter:"):
        name = reason.removeprefix("filter:")
        return "filtered_events", _FILTER_KEYS.get(name, name)
    if outcome is Outcome.DROPPED:
        return "discarded_events", _DROPPED_REASONS.get(reason, "send_error")
    sdk = _SDK_REASONS.get(outcome)
    return None if sdk is None else ("discarded_events", sdk)


class ClientReporter:
    """Counts discards per upstream target and spools one client report per target every interval."""

    def __init__(self, outcomes: Outcomes, spool: Spool, clock: Clock, interval: float) -> None:
        self._outcomes = outcomes
        self._spool = spool
        self._clock = clock
        self._interval = interval
        self._counts: dict[tuple[Target, str, str, str], int] = {}  # (target, field, reason, category)
        self._task: asyncio.Task[None] | None = None
        outcomes.subscribe(self._count)

    def _count(self, outcome: Outcome, reason: str, category: str, quantity: int, target: Target | None) -> None:
        if target is None or category == "internal":  # reports about reports would never end
            return
        reported = report_field(outcome, reason)
        if reported is None:
            return
        key = (target, *reported, category)
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
        by_target: dict[Target, dict[str, list[dict[str, object]]]] = {}
        for (target, field, reason, category), quantity in counts.items():
            fields = by_target.setdefault(target, {})
            fields.setdefault(field, []).append({"reason": reason, "category": category, "quantity": quantity})
        now = self._clock.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        for target, fields in by_target.items():
            payload = orjson.dumps({"timestamp": stamp, **fields})
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


__all__ = ["ClientReporter", "report_field"]
