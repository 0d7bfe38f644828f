"""Running the relay: listen, wait for SIGTERM or SIGINT, then drain within shutdown_timeout."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from . import eventloop, heap
from .admin import start_admin
from .app import build_spool, create_app
from .config import Config
from .coredumps import forbid_core_dumps
from .ingest import STATE, RelayState
from .logs import log_event
from .spool import Spool
from .spool.partitions import adopt_orphans, hold_partition, partition_config, release_partition
from .workers import WorkerRole

logger = logging.getLogger("relay")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_GC_YOUNG_THRESHOLD = 7000  # net container allocations between young collections (CPython's default is 700)


async def serve(config: Config, role: WorkerRole | None = None) -> None:
    """Serve until a termination signal, then drain: readiness off, intake off, in-flight done, queue flushed.

    As worker `role.index` of `relay run --workers N` it shares the port (SO_REUSEPORT), keeps its own
    spool partition, and reports to the supervisor.
    """
    index, count = (role.index, role.count) if role is not None else (0, 1)
    heap.tune_malloc()  # big freed buffers go back to the system (relay.heap)
    if not config.core_dumps:  # memory holds unscrubbed payloads: no core file of it (relay.coredumps)
        for problem in forbid_core_dumps():
            log_event(logger, logging.WARNING, "core dumps could not be turned off", problem=problem)
    own = partition_config(config, index, count)
    lock = hold_partition(own)
    app = create_app(own)
    state = app[STATE]
    if role is not None:
        role.expose(state.metrics)
    # Half the budget for in-flight requests at most; the forwarder drains until the full deadline.
    # keepalive_timeout: aiohttp closes a connection that completes no request for this long, from its start too
    # (idle keep-alive, headers that never finish).
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.shutdown_timeout / 2,
        keepalive_timeout=config.listen.idle_timeout,
        # after an early answer (413, 408) aiohttp reads what is left of the body this long before closing
        lingering_time=min(2.0, config.listen.body_timeout),
    )
    await runner.setup()
    assert runner.server is not None
    cap_connections(runner.server, config.listen.max_connections, state)
    # What start-up built (compiled rules, config, modules) lives as long as the process: leave it out of the
    # collector's full passes, which otherwise walk all of it (tens of ms) every few thousand requests.
    gc.freeze()
    # Each request allocates thousands of containers (its parsed event) that die with it; at the default
    # threshold (700) the young collection runs several times per request and walks the ones in flight.
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    site = web.TCPSite(
        runner,
        config.listen.host,
        config.listen.port,
        reuse_address=True,
        reuse_port=True if role is not None else None,
    )
    try:
        await site.start()
    except BaseException:  # the port is taken, say: close the spool and the upstream before failing
        await runner.cleanup()
        release_partition(lock)
        raise
    addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
    log_event(
        logger, logging.INFO, "listening", addresses=addresses, config=config.source, event_loop=eventloop.loop_name()
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    adopting = _start_adopting(config, count, state) if index == 0 else None
    admin: web.AppRunner | None = None
    try:
        if config.admin.enabled and index == 0:  # the rule playground, on its own (localhost) listener
            admin = await start_admin(config, lambda: state.scrub.registry)  # follows rule reloads
        if role is not None:
            role.watch(loop, stop)
            role.tell(b"ready")
        await stop.wait()
    finally:
        for signum in _STOP_SIGNALS:
            if role is None:
                loop.remove_signal_handler(signum)
            else:  # a signal to the whole process group comes forwarded a second time: drain once
                loop.add_signal_handler(signum, lambda: None)
        if role is not None:
            role.unwatch(loop)
            role.tell(b"stopping")
        state.ready = False
        state.shutdown_deadline = state.clock.monotonic() + config.shutdown_timeout
        log_event(logger, logging.INFO, "shutting down", timeout=config.shutdown_timeout, queued=state.spool.pending())
        if adopting is not None:  # what it moved is safe; the rest stays in the orphan for the next start
            adopting.cancel()
            await asyncio.wait([adopting])
        if admin is not None:
            await admin.cleanup()
        await runner.cleanup()
        if role is not None:
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        release_partition(lock)


def cap_connections(server: web.Server, limit: int, state: RelayState) -> None:
    """Close connections past `limit` as they arrive (listen.max_connections): each one costs memory and a file
    descriptor, and a client can open thousands. Counted in relay_connections_refused_total."""
    made, lost = server.connection_made, server.connection_lost
    open_now = 0
    warned = False

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        nonlocal open_now, warned
        made(handler, transport)
        open_now += 1
        if open_now > limit:
            state.metrics.connections_refused.inc()
            if not warned:
                warned = True
                log_event(logger, logging.WARNING, "too many connections, closing new ones", limit=limit)
            transport.close()
        elif warned and open_now <= limit // 2:
            warned = False

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        nonlocal open_now
        open_now -= 1
        lost(handler, exc)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]


def _start_adopting(config: Config, count: int, state: RelayState) -> asyncio.Task[int] | None:
    """Worker 0 (or the single process) drains spool partitions no current worker owns, in the background."""
    if config.spool.backend != "sqlite":
        return None

    def open_partition(path: Path) -> Spool:
        return build_spool(
            dataclasses.replace(config, spool=dataclasses.replace(config.spool, path=str(path))),
            state.outcomes,
            state.clock,
            state.metrics,
        )

    adopt = adopt_orphans(config.spool.path, count, state.spool, open_partition)
    return asyncio.get_running_loop().create_task(adopt, name="relay-spool-adopt")
