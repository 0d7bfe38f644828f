"""Running the relay: listen, wait for SIGTERM or SIGINT, then drain within shutdown_timeout."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .admin import start_admin
from .app import create_app
from .config import Config
from .ingest import STATE
from .logs import log_event

logger = logging.getLogger("relay")


async def serve(config: Config) -> None:
    """Serve until a termination signal, then drain: readiness off, intake off, in-flight done, queue flushed."""
    app = create_app(config)
    state = app[STATE]
    # Half the budget for in-flight requests at most; the forwarder drains until the full deadline.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=config.shutdown_timeout / 2)
    await runner.setup()
    site = web.TCPSite(runner, config.listen.host, config.listen.port, reuse_address=True)
    await site.start()
    addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
    log_event(logger, logging.INFO, "listening", addresses=addresses, config=config.source)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    admin: web.AppRunner | None = None
    try:
        if config.admin.enabled:  # the rule playground, on its own (localhost) listener
            admin = await start_admin(config, lambda: state.scrub.registry)  # follows rule reloads
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        state.ready = False
        state.shutdown_deadline = state.clock.monotonic() + config.shutdown_timeout
        log_event(logger, logging.INFO, "shutting down", timeout=config.shutdown_timeout, queued=state.spool.pending())
        if admin is not None:
            await admin.cleanup()
        await runner.cleanup()
