"""The relay's runtime state, shared by handlers through a typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..clock import Clock
from ..config import Config
from ..forward import Forwarder, Upstream
from ..metrics import Metrics
from ..outcomes import Outcomes
from ..ratelimit import RateLimitCache
from ..ratelimit.quota import QuotaBackend
from ..spool import Spool
from .auth import ProjectIndex
from .service import IngestService


@dataclass(slots=True)
class RelayState:
    """Every long-lived component of one relay instance."""

    config: Config
    clock: Clock
    metrics: Metrics
    outcomes: Outcomes
    projects: ProjectIndex
    limits: RateLimitCache
    spool: Spool
    upstream: Upstream
    forwarder: Forwarder
    ingest: IngestService
    dumps: Callable[[Any], str]
    quotas: QuotaBackend | None = None
    reporter: Any = None  # ClientReporter when client reports are on
    reloader: Any = None  # RuleReloader: SIGHUP and rule-file changes
    scrub: Any = None  # the ScrubStage; its `registry` is the rules in force
    audit_log: Any = None  # AuditLog when scrub.audit_log is set
    loop_lag: Any = None  # LoopLag: how long the event loop was held
    ready: bool = False
    shutdown_deadline: float | None = None  # monotonic; set when a drain begins

    def is_ready(self) -> bool:
        """Ready for traffic: started, not draining, and the spool can keep what it accepts and has room for it
        (a full spool would answer 503 to every event: the load balancer should send them elsewhere)."""
        return self.ready and self.spool.healthy and not self.spool.full

    async def refresh_gauges(self) -> None:
        """Update gauges that are read rather than counted."""
        metrics = self.metrics
        metrics.queue_depth.set(self.spool.pending())
        metrics.queue_bytes.set(self.spool.pending_bytes())
        metrics.spool_entries.set(self.spool.pending())
        metrics.spool_bytes.set(self.spool.pending_bytes())
        metrics.spool_oldest_age.set(await self.spool.oldest_age())
        metrics.ready.set(1 if self.is_ready() else 0)
        metrics.upstream_limits_active.set(self.limits.active())
        if self.loop_lag is not None:
            metrics.loop_lag_max.set(self.loop_lag.take_worst())


STATE = web.AppKey("relay_state", RelayState)
