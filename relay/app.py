"""Assembling a relay: components wired in pipeline order, owned by the aiohttp app's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence

import orjson
from aiohttp import web

from . import heap
from .client_reports import ClientReporter
from .clock import Clock, SystemClock
from .config import Config, load_config
from .errors import RelayError
from .filter import FilterStage
from .forward import Forwarder, Upstream, UpstreamRouter
from .ingest import STATE, IngestService, ProjectIndex, RelayState, add_routes, relay_middleware
from .ingest.body import BODY_TIMEOUT, INFLIGHT, InflightBudget
from .logs import log_event
from .looplag import LoopLag
from .metrics import Metrics
from .outcomes import Outcome, Outcomes, Reason
from .pipeline import Stage
from .ratelimit import RateLimitCache
from .ratelimit.gate import UpstreamLimitGate
from .ratelimit.memory import MemoryQuotaBackend
from .ratelimit.quota import QuotaBackend
from .ratelimit.stage import QuotaStage
from .routing import Router
from .rules.reload import RuleReloader
from .rules.verify import verify_packs
from .sample import SamplingStage
from .scrub.auditlog import AuditLog
from .scrub.offload import LARGE_BYTES
from .scrub.registry import ScrubberRegistry
from .scrub.stage import ScrubStage
from .spool import Entry, MemorySpool, Spool, SqliteSpool

logger = logging.getLogger("relay")


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def build_stages(
    config: Config, limits: RateLimitCache, quotas: QuotaBackend, metrics: Metrics, scrub: ScrubStage | None = None
) -> list[Stage]:
    """The processing pipeline, in order: turn away what the upstream refuses, drop what the inbound
    filters match (and set fingerprints), sample, draw from quotas (so that filtered and sampled-out
    items don't use them up), then scrub what is left.

    Nothing reaches the spool (memory or disk) before the scrub stage has run.
    """
    return [
        UpstreamLimitGate(limits),
        FilterStage(config),
        SamplingStage(config),
        QuotaStage(quotas, metrics),
        scrub or ScrubStage(ScrubberRegistry(config), metrics),
    ]


def build_quota_backend(config: Config, metrics: Metrics, clock: Clock) -> QuotaBackend:
    """Quota counters in this process, or in Redis (with the local limiter as fallback)."""
    if config.ratelimit.backend == "redis":
        from .ratelimit.redis import build_quota_backend as build_redis

        return build_redis(config.ratelimit, metrics, clock)
    return MemoryQuotaBackend(clock)


def build_spool(config: Config, outcomes: Outcomes, clock: Clock, metrics: Metrics | None = None) -> Spool:
    """The configured spool: durable SQLite (the default) or in memory."""
    if config.spool.backend == "memory":
        return MemorySpool(config.queue.max_envelopes, config.queue.max_bytes, clock)

    def expired(entries: list[Entry]) -> None:
        outcomes.record_entries(Outcome.DROPPED, Reason.EXPIRED, entries)

    spool = config.spool
    return SqliteSpool(spool.path, spool.max_disk, spool.max_age, spool.fsync, clock, expired, metrics=metrics)


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    upstream: Upstream | None = None,
    spool: Spool | None = None,
    stages: Sequence[Stage] | None = None,
) -> web.Application:
    """Build the aiohttp application for a config; components start and stop with the app."""
    clock = clock or SystemClock()
    metrics = Metrics()
    outcomes = Outcomes(metrics)
    limits = RateLimitCache(clock)
    spool = spool or build_spool(config, outcomes, clock, metrics)
    upstream = upstream or UpstreamRouter(config.upstream)
    forwarder = Forwarder(spool, upstream, config.upstream, outcomes, limits, metrics, clock)
    quotas = build_quota_backend(config, metrics, clock)
    audit_log = AuditLog(config.scrub.audit_log) if config.scrub.audit_log else None
    scrub = ScrubStage(ScrubberRegistry(config), metrics, audit_log)
    reloader = RuleReloader(config, scrub, metrics, verify_packs, config.scrub.reload_interval)
    reporter = (
        ClientReporter(outcomes, spool, clock, config.outcomes.interval) if config.outcomes.client_reports else None
    )
    ingest = IngestService(
        config.limits,
        Router(config),
        build_stages(config, limits, quotas, metrics, scrub) if stages is None else stages,
        spool,
        outcomes,
        clock,
        check_json=scrub.child.check_json,  # large payloads are validated in the scrub stage's child process
        large_bytes=LARGE_BYTES,
    )
    state = RelayState(
        config=config,
        clock=clock,
        metrics=metrics,
        outcomes=outcomes,
        projects=ProjectIndex(config),
        limits=limits,
        spool=spool,
        upstream=upstream,
        forwarder=forwarder,
        ingest=ingest,
        dumps=_dumps,
        quotas=quotas,
        reporter=reporter,
        reloader=reloader if stages is None else None,
        scrub=scrub,
        audit_log=audit_log,
        loop_lag=LoopLag(metrics),
    )
    app = web.Application(
        middlewares=[relay_middleware],
        handler_args={"auto_decompress": False, "access_log": None},
    )
    app[STATE] = state
    app[INFLIGHT] = InflightBudget(config.limits.max_inflight_bytes)
    app[BODY_TIMEOUT] = config.listen.body_timeout
    add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _on_sighup(reloader: RuleReloader | None, state: RelayState | None = None) -> None:
    """SIGHUP reloads the rule files and the projects (in the main thread's loop; embedded test relays have no
    signals)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop = asyncio.get_running_loop()
        if reloader is None:
            loop.remove_signal_handler(signal.SIGHUP)
            return
        tasks: set[asyncio.Task[bool]] = set()

        def reload() -> None:
            for coroutine, name in ((reloader.reload("SIGHUP"), "rules-reload"), (_reload_projects(state), "projects")):
                task = loop.create_task(coroutine, name=name)
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)


async def _reload_projects(state: RelayState | None) -> bool:
    """Re-read the config file's `projects` (keys, `disabled`, origins, quotas, filters, sampling, upstream DSN),
    as Relay picks up local project configs while running; a config with problems leaves the running one."""
    if state is None or not os.path.isfile(state.config.source):
        return False
    try:
        new = await asyncio.to_thread(load_config, state.config.source)
    except (RelayError, OSError) as exc:
        log_event(logger, logging.ERROR, "projects reload failed, the running projects stay", error=str(exc))
        return False
    state.config = dataclasses.replace(state.config, projects=new.projects, unknown_projects=new.unknown_projects)
    state.projects = ProjectIndex(state.config)
    log_event(logger, logging.INFO, "projects reloaded", projects=len(new.projects))
    return True


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start upstream, spool and forwarder in order; on the way out drain and close in reverse."""
    state = app[STATE]
    await state.upstream.start()
    await state.spool.start()
    await state.forwarder.start()
    if state.quotas is not None:
        await state.quotas.start()
    if state.reporter is not None:
        await state.reporter.start()
    if state.reloader is not None:
        await state.reloader.start()
        _on_sighup(state.reloader, state)
    heap.settle()  # what start-up built lives on: out of the collector's way (relay.heap)
    state.loop_lag.start()
    state.ready = True
    log_event(
        logger, logging.INFO, "relay ready", projects=len(state.config.projects), upstream=state.config.upstream.url
    )
    yield
    state.ready = False
    deadline = state.shutdown_deadline or state.clock.monotonic() + state.config.shutdown_timeout
    if state.reporter is not None:
        await state.reporter.close()  # the last counts go into the spool, ahead of the drain
    pending = state.spool.pending()
    # Flush what we can before the deadline (a sidecar's volume may not outlive its pod); a durable
    # spool keeps the rest on disk for the next start, a memory spool loses it (outcome shutdown).
    margin = 0.5 if state.spool.durable else 0.0
    drained = await state.forwarder.drain(max(0.0, deadline - state.clock.monotonic() - margin))
    await state.forwarder.stop(max(0.0, deadline - state.clock.monotonic() - margin))
    lost = await state.spool.close()
    state.outcomes.record_entries(Outcome.DROPPED, Reason.SHUTDOWN, lost)
    await state.upstream.close()
    if state.quotas is not None:
        await state.quotas.close()
    if state.reloader is not None:
        await state.reloader.close()
        _on_sighup(None)
    if state.scrub is not None:
        await asyncio.to_thread(state.scrub.close)
    if state.audit_log is not None:
        state.audit_log.close()
    await state.loop_lag.close()
    log_event(
        logger,
        logging.WARNING if lost else logging.INFO,
        "relay stopped",
        pending_at_shutdown=pending,
        drained=drained,
        left_in_spool=state.spool.pending() if state.spool.durable else 0,
        lost_envelopes=len(lost),
    )
