"""An estimate of Redis's clock, so a call can name the window counters the script will use before it runs."""

from __future__ import annotations

import time
from collections.abc import Callable

_UNKNOWN_ERROR = 1.0  # before the first reply: the local wall clock, trusted to a second
_SLACK = 0.01  # drift between replies, and the script's own run time


class ServerClock:
    """Redis's time as local monotonic time plus an offset, learned from every reply (which carries its time).

    The offset's error is half the round trip that measured it: the script ran somewhere between send and receipt.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._monotonic = monotonic
        self._offset = wall() - monotonic()
        self._error = _UNKNOWN_ERROR

    def now(self) -> float:
        """Local monotonic time, the reference for `span` and `learn`."""
        return self._monotonic()

    def span(self, budget: float) -> tuple[float, float]:
        """The server times at which a script sent now runs, if it runs within `budget` seconds."""
        server = self._monotonic() + self._offset
        margin = self._error + _SLACK
        return server - margin, server + budget + margin

    def learn(self, server_now: float, sent: float, received: float) -> None:
        """Take a reply's server time, for a call sent and answered at these `now()` times."""
        self._offset = server_now - (sent + received) / 2
        self._error = max(received - sent, 0.0) / 2


__all__ = ["ServerClock"]
