"""The shared quota backend while it answers in time, the local limiter while it doesn't."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..clock import Clock
from ..logs import log_event
from ..metrics import Metrics
from .quota import QuotaBackend, QuotaCheck


class FallbackQuotaBackend:
    """The shared backend while it answers in time; the local limiter while it doesn't. Never raises."""

    def __init__(
        self,
        primary: QuotaBackend,
        local: QuotaBackend,
        *,
        timeout: float,
        reconnect: float,
        metrics: Metrics,
        clock: Clock,
        logger_name: str = "relay.ratelimit",
    ) -> None:
        self.name = primary.name
        self._primary = primary
        self._local = local
        self._timeout = timeout
        self._reconnect = reconnect
        self._metrics = metrics
        self._clock = clock
        self._logger = logging.getLogger(logger_name)
        self._up = True
        self._down_since = 0.0
        self._retry_at = 0.0
        self._probing = False  # while down, one call at a time finds out whether the primary is back
        metrics.ratelimit_backend_up.labels(self.name).set(1)

    async def start(self) -> None:
        """Start both backends; a primary that can't start is used later, when it can."""
        await self._local.start()
        try:
            await self._primary.start()
        except Exception as exc:
            self._failed(exc)

    async def close(self) -> None:
        """Close both backends; idempotent."""
        try:
            await self._primary.close()
        except Exception as exc:
            log_event(
                self._logger,
                logging.WARNING,
                "closing the quota backend failed",
                backend=self.name,
                error=_describe(exc),
            )
        await self._local.close()

    async def consume(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        """Decide with the primary if it is up (or due for another try), else with the local limiter."""
        probe = False
        if not self._up:
            if self._probing or self._clock.monotonic() < self._retry_at:
                return await self._decide_locally(groups)
            probe = self._probing = True
        try:
            decisions = await asyncio.wait_for(self._primary.consume(groups), self._timeout)
        except Exception as exc:  # CancelledError is no Exception: it propagates
            self._failed(exc)
            return await self._decide_locally(groups)
        finally:
            if probe:
                self._probing = False
        self._answered()
        return decisions

    async def _decide_locally(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        try:
            return await self._local.consume(groups)
        except Exception as exc:  # a broken limiter must not cost envelopes: accept
            log_event(self._logger, logging.ERROR, "local quota backend failed, accepting", error=_describe(exc))
            return [0.0] * len(groups)

    def _failed(self, exc: Exception) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection" if isinstance(exc, OSError) else "error"
        self._metrics.ratelimit_backend_errors.labels(self.name, kind).inc()
        now = self._clock.monotonic()
        self._retry_at = now + self._reconnect
        if self._up:
            self._up = False
            self._down_since = now
            self._metrics.ratelimit_backend_up.labels(self.name).set(0)
            log_event(
                self._logger,
                logging.WARNING,
                "quota backend unavailable, deciding locally",
                backend=self.name,
                error=kind,
                detail=_describe(exc),
                retry_in=self._reconnect,
            )

    def _answered(self) -> None:
        if not self._up:
            self._up = True
            self._metrics.ratelimit_backend_up.labels(self.name).set(1)
            down_for = round(self._clock.monotonic() - self._down_since, 3)
            log_event(self._logger, logging.INFO, "quota backend back", backend=self.name, down_for=down_for)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["FallbackQuotaBackend"]
