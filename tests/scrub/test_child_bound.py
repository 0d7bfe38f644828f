"""Every call into the scrubbing child is bounded: a stuck child is killed, the next call gets a new one, and a
stuck large envelope's items fail closed (issue 15 #2)."""

from __future__ import annotations

import time

import pytest

from relay.config import Config
from relay.scrub.offload import ChildProcess, ChildTimeout


async def test_a_stuck_call_is_cut_at_its_bound_and_the_child_replaced() -> None:
    child = ChildProcess(Config())
    try:
        assert await child.call(abs, -3, 30.0) == 3  # (starts the child)
        first = child.pool
        processes = list(getattr(first, "_processes", {}).values())
        started = time.monotonic()
        with pytest.raises(ChildTimeout, match=r"longer than 0\.5s"):
            await child.call(time.sleep, 60, 0.5)
        assert time.monotonic() - started < 5.0
        assert child.pool is None
        for process in processes:
            process.join(5)
            assert not process.is_alive()
        assert await child.call(abs, -4, 30.0) == 4  # a new child
        assert child.pool is not first
    finally:
        child.close()
