"""The quota script's declared keys: one window counter per check (two near a slot boundary), hash-tagged on a
cluster, and a clock estimate that is corrected by Redis's own time when it is wrong."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from relay.ratelimit.quota import QuotaCheck
from relay.ratelimit.redis import RedisQuotaBackend
from relay.ratelimit.redis_clock import ServerClock
from relay.ratelimit.redis_script import ScriptCall, build_call, parse_reply, tagged

REDIS_URL = "redis://127.0.0.1:6379/0"  # the shared server, as in test_redis_backend


def check(key: str = "42:errors:project:42", window: int = 60, burst: int | None = None) -> QuotaCheck:
    """A one-unit check."""
    return QuotaCheck(key, 10, window, burst, 1)


def test_an_exact_time_declares_one_counter_per_check() -> None:
    """At a known time each check declares its burst key and the counter of its one slot."""
    call = build_call([[check(), check("42:all:project:42", 3600)]], "p", False, "130.5", (130.5, 130.5))
    assert call.keys == [
        "p:b:42:errors:project:42:60",
        "p:q:42:errors:project:42:60:2",
        "p:b:42:all:project:42:3600",
        "p:q:42:all:project:42:3600:0",
    ]
    assert call.args == ["130.5", 1000, 1, 2, 10, 60, -1, 1, 2, 1, 10, 3600, -1, 1, 0, 1]


def test_near_a_slot_boundary_both_slots_are_declared() -> None:
    """When Redis's time may fall either side of a boundary, both counters are declared; the script picks one."""
    call = build_call([[check()]], "p", False, "", (119.98, 120.03))
    assert call.keys == [
        "p:b:42:errors:project:42:60",
        "p:q:42:errors:project:42:60:1",
        "p:q:42:errors:project:42:60:2",
    ]
    assert call.args[-2:] == [1, 2]  # first candidate slot, candidates


def test_on_a_cluster_every_key_of_a_project_shares_its_slot() -> None:
    """The project (the key's first field) is the hash tag: all quotas, windows and slots of it hash alike."""
    groups = [[check(), check("42:all:key:abc", 3600, burst=5)]]
    call = build_call(groups, "relay", True, "", (1e9 - 0.01, 1e9 + 0.05))
    assert {key_slot(key.encode()) for key in call.keys} == {key_slot(b"{42}")}
    assert call.keys[0] == "relay:b:{42}:errors:project:42:60"
    assert tagged("nocolon", True) == "{nocolon}" and tagged(":x", True) == "{:x}"


def test_replies_carry_the_servers_time() -> None:
    """A reply is the time, then one wait per group; the time alone means a slot miss."""
    assert parse_reply([b"1700000000.5", b"0", b"12.5"], 2).waits == [0.0, 12.5]
    miss = parse_reply([b"1700000000.5"], 2)
    assert miss.waits is None and miss.now == 1700000000.5
    with pytest.raises(ValueError, match="unexpected quota script reply"):
        parse_reply([b"1", b"0"], 2)


def test_the_clock_estimate_learns_offset_and_error() -> None:
    """Before a reply: the wall clock, give or take a second; after one: the server's time, give or take half the
    round trip."""
    ticks = iter([100.0, 100.0, 100.5])  # at construction, at the first span, at the second
    clock = ServerClock(monotonic=lambda: next(ticks), wall=lambda: 5000.0)
    low, high = clock.span(0.05)
    assert low == pytest.approx(5000 - 1.01) and high == pytest.approx(5000 + 0.05 + 1.01)
    clock.learn(9000.0, 100.0, 100.2)  # the server said 9000 somewhere between 100.0 and 100.2
    low, high = clock.span(0.05)  # at 100.5: 9000 + 0.4 from the midpoint
    assert low == pytest.approx(9000.4 - 0.1 - 0.01) and high == pytest.approx(9000.4 + 0.05 + 0.1 + 0.01)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared server, deleted afterwards."""
    name = f"relay-test:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


async def test_a_clock_estimate_two_hours_off_costs_one_extra_call_and_writes_once(prefix: str) -> None:
    """The script writes nothing when its slot wasn't declared and answers its time; the next call is right."""
    skewed = ServerClock(wall=lambda: time.time() + 7200)
    backend = RedisQuotaBackend(REDIS_URL, prefix, 2.0, server_clock=skewed)
    calls: list[ScriptCall] = []
    script = backend._script

    async def counted(connection: Any, call: ScriptCall) -> Any:
        calls.append(call)
        return await script(connection, call)

    backend._script = counted  # type: ignore[method-assign]
    await backend.start()
    try:
        assert await backend.consume([[check(window=60)]]) == [0.0]
        assert len(calls) == 2  # a miss, then the call with the slot Redis's time falls in
        assert await backend.consume([[check(window=60)]]) == [0.0]
        assert len(calls) == 3
    finally:
        await backend.close()
    client = redis.Redis.from_url(REDIS_URL)
    counters = list(client.scan_iter(match=f"{prefix}:q:*"))
    assert len(counters) == 1 and client.get(counters[0]) == b"2"  # two units, counted once each
    client.close()
