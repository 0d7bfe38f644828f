"""The forwarder: drains the spool in batches and settles every entry with exactly one outcome."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from ..clock import Clock
from ..config import UpstreamConfig
from ..envelope import Envelope, parse_envelope
from ..errors import EnvelopeError, RelayError, UpstreamUnavailable
from ..logs import log_event
from ..metrics import Metrics
from ..outcomes import Outcome, Outcomes, Reason
from ..ratelimit import (
    DEFAULT_RETRY_AFTER,
    LimitCeiling,
    RateLimit,
    RateLimitCache,
    parse_rate_limits,
    parse_retry_after,
)
from ..spool import Entry, Spool
from .backoff import backoff_delay
from .sent_at import redated
from .upstream import Upstream, UpstreamResponse

logger = logging.getLogger("relay.forward")


class Forwarder:
    """Takes batches from the spool and sends them concurrently, retrying with backoff."""

    def __init__(
        self,
        spool: Spool,
        upstream: Upstream,
        config: UpstreamConfig,
        outcomes: Outcomes,
        limits: RateLimitCache,
        metrics: Metrics,
        clock: Clock,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._spool = spool
        self._upstream = upstream
        self._config = config
        self._outcomes = outcomes
        self._limits = limits
        self._ceiling = LimitCeiling(config.max_rate_limit, clock)
        self._metrics = metrics
        self._clock = clock
        self._rand = rand
        self._slots = asyncio.Semaphore(config.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # consecutive sends that failed for want of a working upstream
        self.outage = False
        self._probes = 0

    async def start(self) -> None:
        """Start the drain loop as a named task."""
        self._task = asyncio.create_task(self._run(), name="relay.forwarder")

    async def drain(self, timeout: float) -> bool:
        """Keep forwarding until the spool is empty or `timeout` passes; True when empty."""
        deadline = self._clock.monotonic() + timeout
        while self._spool.pending() > 0:
            if self._clock.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self, timeout: float) -> None:
        """Take nothing more from the spool; give in-flight sends up to `timeout` to finish, then cancel them."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=max(0.0, timeout))
        await self.close()

    async def close(self) -> None:
        """Stop the loop and abandon in-flight sends (their entries stay in the spool); idempotent."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        batch_config = self._config.batch
        while True:
            try:
                if self.outage:
                    await self._probe()
                    continue
                batch = await self._spool.take(batch_config.max_envelopes, batch_config.linger)
            except RelayError as exc:  # a transient spool error must not stop forwarding for good
                log_event(logger, logging.ERROR, "reading the spool failed, retrying", error=str(exc))
                await self._clock.sleep(0.5)
                continue
            for unit in _group(batch):
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(unit), name="relay.forwarder.send")
                self._inflight.add(task)
                task.add_done_callback(self._finished)

    async def _probe(self) -> None:
        """Outage mode: one envelope at a time, with a growing pause after each failure."""
        batch = await self._spool.take(1, 0.0, due_only=False)  # the oldest, whatever its retry delay
        for unit in _group(batch):
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(unit, probe=True), name="relay.forwarder.probe")
            self._inflight.add(task)
            task.add_done_callback(self._finished)
            await asyncio.wait({task})
        if self.outage:
            self._probes += 1
            policy = self._config.retry
            ceiling = min(self._config.outage.probe_max, policy.initial * policy.multiplier ** min(self._probes, 64))
            await self._clock.sleep(ceiling * (0.5 + self._rand() / 2))

    def _upstream_reached(self) -> None:
        self._failures = 0
        if self.outage:
            self.outage = False
            self._probes = 0
            self._metrics.upstream_outage.set(0)
            log_event(logger, logging.WARNING, "upstream is back, leaving outage mode")
            task = asyncio.create_task(self._spool.release_delayed(), name="relay.forwarder.release")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _upstream_failed(self) -> None:
        self._failures += 1
        if not self.outage and self._failures >= self._config.outage.after_failures:
            self.outage = True
            self._metrics.upstream_outage.set(1)
            log_event(logger, logging.WARNING, "upstream down, entering outage mode", failures=self._failures)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log_event(logger, logging.ERROR, "forward task failed", error=repr(task.exception()))

    async def _deliver(self, entries: list[Entry], probe: bool = False) -> None:
        if self.outage and not probe:
            # Taken before the outage began: hand back untried, the probe loop sends one at a time.
            for entry in entries:
                await self._spool.retry(entry, 0.0)
            return
        target = entries[0].target
        body = entries[0].body if len(entries) == 1 else _merge(entries)
        body = redated(body, entries[0].received_at, self._clock.time())  # the time held here isn't clock skew
        started = self._clock.monotonic()
        response: UpstreamResponse | None = None
        try:
            response = await self._upstream.send(target, body, entries[0].client)
            label = str(response.status)
        except UpstreamUnavailable as exc:
            label = "timeout" if str(exc) == "timeout" else "network_error"
            log_event(logger, logging.WARNING, "upstream unreachable", url=target.base_url, error=str(exc))
        except Exception as exc:  # a bug or an unexpected I/O error: retry rather than strand the entry
            label = "error"
            log_event(logger, logging.ERROR, "upstream send failed", url=target.base_url, error=repr(exc))
        self._metrics.forward_attempts_by(label).inc()
        self._metrics.forward_duration.observe(self._clock.monotonic() - started)

        if response is None:
            self._upstream_failed()
            await self._retry(entries)
            return
        self._learn_limits(entries[0], response)
        status = response.status
        if status >= 500 or status == 408:
            self._upstream_failed()
        else:
            self._upstream_reached()
        if 200 <= status < 300:
            await self._settle(entries, Outcome.FORWARDED, Reason.NONE)
        elif status == 429:
            # Final, as in Sentry's Relay: the upstream counted the envelope as rate limited; sending it again
            # once the limit expires would count it twice and spend the next window's quota. The limit it
            # sent is cached (above): ingest answers 429 to the SDKs while it lasts.
            await self._settle(entries, Outcome.RATE_LIMITED, Reason.UPSTREAM_LIMITED_ON_SEND)
        elif status >= 500 or status == 408:
            await self._retry(entries)
        else:
            for entry in entries:
                log_event(
                    logger,
                    logging.WARNING,
                    "upstream rejected envelope",
                    status=status,
                    project=entry.target.project_id,
                    event_id=entry.event_id,
                    bytes=entry.size,
                    items=len(entry.categories),
                )
            await self._settle(entries, Outcome.INVALID, Reason.UPSTREAM_REJECTED)

    def _learn_limits(self, entry: Entry, response: UpstreamResponse) -> list[RateLimit]:
        header = response.headers.get("x-sentry-rate-limits")
        limits = parse_rate_limits(header) if header else []
        if response.status == 429 and not limits:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.time())
            limits = [RateLimit(DEFAULT_RETRY_AFTER if retry_after is None else retry_after, frozenset(), "key")]
        if limits:
            target = entry.target
            limits = self._ceiling.clamp(target.base_url, target.project_id, target.public_key, limits)
            self._limits.remember(target.base_url, target.project_id, target.public_key, limits)
            for limit in limits:
                self._metrics.upstream_rate_limits.labels(limit.scope).inc()
        return limits

    async def _retry(self, entries: Sequence[Entry]) -> None:
        max_elapsed = self._config.retry.max_elapsed
        for entry in entries:
            entry.attempts += 1
            delay = backoff_delay(entry.attempts, self._config.retry, self._rand)
            waited = self._clock.time() - entry.received_at
            if max_elapsed > 0 and waited + delay > max_elapsed:
                await self._settle([entry], Outcome.DROPPED, Reason.RETRY_EXHAUSTED)
                log_event(
                    logger, logging.WARNING, "gave up on envelope", event_id=entry.event_id, attempts=entry.attempts
                )
                continue
            await self._spool.retry(entry, delay)

    async def _settle(self, entries: Sequence[Entry], outcome: Outcome, reason: Reason) -> None:
        await self._spool.ack(entries)
        self._outcomes.record_entries(outcome, reason, entries)
        self._metrics.spool_drained.inc(len(entries))


def _group(batch: list[Entry]) -> list[list[Entry]]:
    """One send per entry, except that client-report-only entries to one target share an envelope."""
    units: list[list[Entry]] = []
    reports: dict[object, list[Entry]] = {}
    for entry in batch:
        if entry.client_reports_only:
            reports.setdefault(entry.target, []).append(entry)
        else:
            units.append([entry])
    units.extend(reports.values())
    return units


def _merge(entries: Sequence[Entry]) -> bytes:
    merged = Envelope()
    for entry in entries:
        try:
            envelope = parse_envelope(entry.body)
        except EnvelopeError:  # cannot happen for bodies we serialized; keep them apart if it does
            continue
        if not merged.headers:
            merged.headers = {k: v for k, v in envelope.headers.items() if k in ("dsn", "sent_at", "sdk")}
        merged.items.extend(envelope.items)
    return merged.serialize()
