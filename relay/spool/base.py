"""The spool seam: where accepted envelopes wait until the forwarder settles them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..routing import Target


@dataclass(slots=True)
class Entry:
    """One accepted, rewritten envelope waiting to be forwarded."""

    target: Target
    body: bytes
    categories: tuple[str, ...]
    received_at: float  # wall clock
    event_id: str | None = None
    client: str | None = None  # the SDK's sentry_client, passed on upstream
    client_reports_only: bool = False
    attempts: int = 0
    id: int = 0  # assigned by the spool

    @property
    def size(self) -> int:
        """Bytes this entry holds."""
        return len(self.body)

    def item_sizes(self) -> list[int] | None:
        """Payload bytes of each item (for outcomes counted in bytes), or None when none needs them."""
        if "attachment" not in self.categories:
            return None
        from ..envelope import parse_envelope  # only for envelopes with attachments

        try:
            return [len(item.payload) for item in parse_envelope(self.body).items for _ in range(item.quantity)]
        except Exception:  # a body we wrote ourselves; if it can't be read, count items instead
            return None


class Spool(Protocol):
    """A bounded store of entries with delayed retry; implementations must be safe on one event loop."""

    durable: bool  # True: what it holds survives the process, so shutdown need not drain it

    @property
    def healthy(self) -> bool:
        """False while the spool cannot keep what it accepts (its file was deleted): the relay is not ready."""
        ...

    @property
    def full(self) -> bool:
        """True while an ordinary envelope would be refused (bound reached, or no disk space): the relay is not
        ready, so a load balancer sends to other replicas until the forwarder has drained some."""
        ...

    async def start(self) -> None:
        """Open the spool (and recover what it kept, if it keeps anything)."""
        ...

    async def push(self, entry: Entry) -> None:
        """Accept an entry, or raise SpoolFull."""
        ...

    async def take(self, max_entries: int, linger: float, *, due_only: bool = True) -> list[Entry]:
        """Wait for ready entries; return up to `max_entries`, waiting at most `linger` to fill up.

        `due_only=False` also returns entries still waiting out a retry delay (outage probes).
        """
        ...

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Forget entries that reached a final outcome."""
        ...

    async def retry(self, entry: Entry, delay: float) -> None:
        """Make an entry ready again after `delay` seconds."""
        ...

    async def release_delayed(self) -> None:
        """Make every delayed entry due now (the upstream is back)."""
        ...

    async def oldest_age(self) -> float:
        """Seconds since the oldest held entry was received (0 when empty)."""
        ...

    def pending(self) -> int:
        """Entries held: waiting, delayed or in flight."""
        ...

    def pending_bytes(self) -> int:
        """Bytes held by those entries."""
        ...

    async def close(self) -> list[Entry]:
        """Close the spool; return the entries it cannot keep (the caller accounts for them)."""
        ...


# Room an ordinary envelope needs: below it, the spool reports itself full (readiness), before it refuses one.
HEADROOM_BYTES = 1024**2


def headroom(bound: int) -> int:
    """Free bytes under which a spool of `bound` bytes counts as full (1 MiB, or 1% of a small bound)."""
    return min(HEADROOM_BYTES, max(1, bound // 100))
