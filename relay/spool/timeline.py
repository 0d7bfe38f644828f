"""The spool's own time: the wall clock at start-up, advanced by the monotonic clock.

Entry ages (`max_age`) and retry times are kept on this timeline, so a step of the wall clock
while the relay runs (NTP correcting a bad clock, a VM resumed, `date -s`) neither expires the
backlog early nor leaves retries hours away. Only across a restart do the wall times stored in
the spool file count, and then a time in the future is taken as now.
"""

from __future__ import annotations

import logging

from ..clock import Clock
from ..logs import log_event

logger = logging.getLogger("relay.spool")

# Steps smaller than this are ignored: wall and monotonic time are read one after the other, and a
# second more or less of age changes nothing; ignoring them keeps stored times exactly as given.
STEP_TOLERANCE = 1.0


class Timeline:
    """Spool time (`now()`), and the conversion of wall times to it and back."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._offset = clock.time() - clock.monotonic()
        self._reported = 0.0  # the step last logged

    def anchor(self) -> None:
        """Start the timeline at the current wall time (the spool is opening)."""
        self._offset = self._clock.time() - self._clock.monotonic()
        self._reported = 0.0

    def now(self) -> float:
        """Seconds on the spool's timeline (wall time at `anchor()`, then monotonic)."""
        return self._clock.monotonic() + self._offset

    def step(self) -> float:
        """How far the wall clock has stepped away from the timeline since `anchor()` (0 below a second)."""
        step = self._clock.time() - self.now()
        if abs(step) < STEP_TOLERANCE:
            return 0.0
        if abs(step - self._reported) >= STEP_TOLERANCE:
            self._reported = step
            log_event(
                logger,
                logging.WARNING,
                "wall clock stepped; spool ages and retries follow the monotonic clock",
                step_seconds=round(step, 3),
            )
        return step

    def from_wall(self, wall: float) -> float:
        """A wall time (an entry's `received_at`) on the timeline."""
        return wall - self.step()

    def to_wall(self, moment: float) -> float:
        """A moment of the timeline as the current wall clock reads it."""
        return moment + self.step()
