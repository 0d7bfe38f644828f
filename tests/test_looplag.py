"""relay_event_loop_lag_seconds: how long the event loop was held, seen from a timer that wakes every 20 ms."""

from __future__ import annotations

import asyncio
import re
import time

from .conftest import RelayFactory


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


async def test_a_held_loop_shows_in_the_lag_metrics(make_relay: RelayFactory) -> None:
    """A callback that holds the loop 150 ms shows as a lag of about that much, and the max resets on scrape."""
    client = await make_relay()
    await asyncio.sleep(0.1)  # the timer is running
    asyncio.get_running_loop().call_soon(time.sleep, 0.15)
    await asyncio.sleep(0.1)
    text = await (await client.get("/metrics")).text()
    assert 0.12 <= _metric(text, "relay_event_loop_lag_max_seconds") < 1.0
    assert _metric(text, 'relay_event_loop_lag_seconds_bucket{le="0.1"}') < _metric(
        text, 'relay_event_loop_lag_seconds_bucket{le="0.25"}'
    )
    await asyncio.sleep(0.1)
    text = await (await client.get("/metrics")).text()
    assert _metric(text, "relay_event_loop_lag_max_seconds") < 0.1  # the worst since the last scrape
