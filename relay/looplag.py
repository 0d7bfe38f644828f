"""How long the event loop was held: a task that asks to wake every `INTERVAL` and measures how late it woke.

Whatever ran in between (a handler parsing a body, a stage, the collector) held every other request that long.
The lateness goes to `relay_event_loop_lag_seconds` (a histogram, and `relay_event_loop_lag_max_seconds`, the
worst since the last scrape), so an operator sees stalls the request latencies average away, and the attack
bench checks the bound: no request may hold the loop much past 50 ms.
"""

from __future__ import annotations

import asyncio

from .metrics import Metrics
from .tasks import stop_task

INTERVAL = 0.02  # seconds between wake-ups: a stall shorter than this may fall between two of them


class LoopLag:
    """Measures event-loop lag into the metrics while started."""

    def __init__(self, metrics: Metrics, interval: float = INTERVAL) -> None:
        self._metrics = metrics
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.worst = 0.0  # the largest lag since the last `take_worst()`

    def start(self) -> None:
        """Start measuring (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def close(self) -> None:
        """Stop measuring; idempotent."""
        task, self._task = self._task, None
        await stop_task(task)

    def take_worst(self) -> float:
        """The worst lag since the last call, then reset (what a scrape reports)."""
        worst, self.worst = self.worst, 0.0
        return worst

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        histogram = self._metrics.loop_lag
        while True:
            expected = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            lag = max(0.0, loop.time() - expected)
            histogram.observe(lag)
            if lag > self.worst:
                self.worst = lag


__all__ = ["INTERVAL", "LoopLag"]
