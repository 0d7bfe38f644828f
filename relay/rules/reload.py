"""Hot reload of rule files: on SIGHUP and when a file changes, compile and test, then swap whole.

A reload builds a complete new `ScrubberRegistry` off the event loop, runs the `tests:` embedded in
every pack against it, and only then swaps it into the scrub stage (one attribute assignment). If
anything fails, the running rules stay, the problems are logged with file and line, and
`relay_rules_reload_total{result="error"}` goes up; the relay stays ready throughout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import heap
from ..config import Config
from ..errors import RelayError
from ..logs import log_event
from ..metrics import Metrics
from ..scrub.registry import ScrubberRegistry
from ..scrub.stage import ScrubStage
from ..tasks import stop_task
from .loader import RuleError
from .model import RulePack

logger = logging.getLogger("relay.rules")

# Runs a pack's embedded tests; returns one message per failure (empty: all passed).
PackVerifier = Callable[[Sequence[RulePack]], list[str]]
_Signature = tuple[tuple[str, float, int], ...]


class RuleReloader:
    """Owns the scrub stage's rules after start-up: watches the files and swaps in tested new rules."""

    def __init__(
        self, config: Config, stage: ScrubStage, metrics: Metrics, verify: PackVerifier, interval: float
    ) -> None:
        self._config = config
        self._stage = stage
        self._metrics = metrics
        self._verify = verify
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._seen = _signature(stage.registry.paths())
        metrics.rules_loaded_at.set(time.time())

    async def start(self) -> None:
        """Start watching the rule files (unless `scrub.reload_interval` is 0)."""
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="rules-watch")

    async def close(self) -> None:
        """Stop watching; idempotent."""
        task, self._task = self._task, None
        await stop_task(task)

    async def reload(self, trigger: str) -> bool:
        """Compile and test the rule files, and swap them in if all is well; True if swapped."""
        async with self._lock:
            paths = self._stage.registry.paths()
            self._seen = _signature(paths)
            started = time.monotonic()
            try:
                registry = await asyncio.to_thread(self._build)
            except RuleError as exc:
                self._failed(trigger, exc.problems)
                return False
            except (RelayError, OSError, ValueError) as exc:
                self._failed(trigger, [str(exc)])
                return False
            self._stage.swap(registry)
            heap.settle()  # the new rules live on; the old registry may be collected (relay.heap)
            self._seen = _signature(registry.paths())
            self._metrics.rules_reloads.labels("ok").inc()
            self._metrics.rules_loaded_at.set(time.time())
            rules = sum(len(pack.rules) for pack in registry.packs())
            log_event(
                logger,
                logging.INFO,
                "rules reloaded",
                trigger=trigger,
                packs=[pack.name for pack in registry.packs()],
                rules=rules,
                took_ms=round((time.monotonic() - started) * 1000, 1),
            )
            return True

    def _build(self) -> ScrubberRegistry:
        registry = ScrubberRegistry(self._config)
        failures = self._verify(registry.packs())
        if failures:
            raise RuleError(failures)
        return registry

    def _failed(self, trigger: str, problems: list[str]) -> None:
        self._metrics.rules_reloads.labels("error").inc()
        log_event(
            logger,
            logging.ERROR,
            "rules reload failed, the running rules stay in force",
            trigger=trigger,
            problems=problems,
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            current = await asyncio.to_thread(_signature, self._stage.registry.paths())
            if current != self._seen:
                await self.reload("file change")


def _signature(paths: Sequence[Path]) -> _Signature:
    """What identifies the files' contents cheaply: path, modification time and size."""
    found = []
    for path in paths:
        try:
            stat = path.stat()
            found.append((str(path), stat.st_mtime, stat.st_size))
        except OSError:
            found.append((str(path), -1.0, -1))
    return tuple(found)


__all__ = ["PackVerifier", "RuleReloader"]
