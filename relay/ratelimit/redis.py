"""Quota counters in Redis, shared by every replica, with the local limiter standing in while Redis is away.

One envelope is one script call (`relay.ratelimit.redis_script`): it decides all of the envelope's groups
atomically, with the arithmetic of `relay.ratelimit.quota` and Redis's own clock (`TIME`), so replicas with skewed
clocks agree on the windows. Calls that arrive together are coalesced: into one script call on one server (or the
master that Sentinel names), and on a Redis Cluster into one per hash slot, sent to their nodes at once. An
envelope's keys share the slot of its project, so its checks are still decided in one call.

`redis` is imported only when a `RedisQuotaBackend` first connects, so `backend: memory` never loads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..clock import Clock
from ..config.model import RateLimitConfig
from ..errors import ConfigError
from ..metrics import Metrics
from .fallback import FallbackQuotaBackend
from .memory import MemoryQuotaBackend
from .quota import QuotaBackend, QuotaCheck
from .redis_client import RedisAccess, RedisConnection, open_connection
from .redis_clock import ServerClock
from .redis_script import SCRIPT, SCRIPT_SHA, ScriptCall, build_call, burst_key, parse_reply, tagged

_MAX_CONNECTIONS = 64  # per server (per node, on a cluster)
_MAX_COALESCED = 1024  # callers per script call
_ATTEMPTS = 3  # script calls per decision when Redis's clock is not where we thought (see redis_script)
_MAX_BUDGET = 1.0  # how late after sending a script may run and still be expected to find its window slot

Batch = list[tuple[Sequence[Sequence[QuotaCheck]], "asyncio.Future[list[float]]"]]


class RedisQuotaBackend:
    """Quota counters in Redis: one atomic script call per `consume`, or per burst of concurrent ones.

    Calls that arrive in the same event-loop turn are coalesced into one script call (one per hash slot on a
    cluster; their groups decided in arrival order), so a spike of envelopes costs a few round trips, not one
    connection each.
    """

    # Failures surface as the builtin TimeoutError or ConnectionError (for the fallback to sort without
    # importing redis), anything else as the Redis error itself.

    name = "redis"

    def __init__(
        self,
        url: str,
        key_prefix: str,
        timeout: float,
        *,
        cluster: bool = False,
        access: RedisAccess | None = None,
        max_connections: int = _MAX_CONNECTIONS,
        server_clock: ServerClock | None = None,
    ) -> None:
        if cluster and ("{" in key_prefix or "}" in key_prefix):
            raise ValueError("a key prefix for a Redis Cluster must not contain { or }: they would be the hash tag")
        self._url = url
        self._prefix = key_prefix
        self._timeout = timeout
        self._cluster = cluster
        self._access = access or RedisAccess()
        self._max_connections = max_connections
        self._server_clock = server_clock or ServerClock()
        self._connection: RedisConnection | None = None
        self._closed = False
        self._pending: Batch = []
        self._senders: set[asyncio.Task[None]] = set()
        self._discovery: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: RateLimitConfig) -> RedisQuotaBackend:
        """The backend a `ratelimit` section describes."""
        access = RedisAccess.from_config(config)
        return cls(config.url, config.key_prefix, config.timeout, cluster=config.cluster, access=access)

    async def start(self) -> None:
        """Prepare the client; connections open on first use, so a Redis that is down doesn't stop us.

        A cluster client also starts fetching the map of slots to nodes, so the first envelope needn't wait for it.
        """
        connection = self._connect()
        if connection.cluster and self._discovery is None:
            self._discovery = asyncio.get_running_loop().create_task(
                connection.discover(), name="relay-ratelimit-cluster-discovery"
            )

    async def close(self) -> None:
        """Close the connections; idempotent."""
        self._closed = True
        if self._discovery is not None:
            self._discovery.cancel()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def consume(self, groups: Sequence[Sequence[QuotaCheck]]) -> list[float]:
        """Decide each group in order at Redis's time (see `relay.ratelimit.quota`)."""
        if not groups:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[float]] = loop.create_future()
        self._pending.append((groups, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    async def consume_at(self, groups: Sequence[Sequence[QuotaCheck]], now: float) -> list[float]:
        """The decision at wall-clock time `now` instead of Redis's; for tests and comparisons."""
        results = await self._run(groups, repr(float(now)))
        return _waits(results)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(batch), _MAX_COALESCED):
            task = loop.create_task(
                self._send(batch[start : start + _MAX_COALESCED]), name="relay-ratelimit-redis-call"
            )
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    async def _send(self, batch: Batch) -> None:
        live = [(groups, future) for groups, future in batch if not future.done()]  # timed-out callers are gone
        try:
            results = await self._run([group for groups, _ in live for group in groups], "")
        except Exception as exc:
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for groups, future in live:
            mine = results[offset : offset + len(groups)]
            offset += len(groups)
            if future.done():
                continue
            error = next((result for result in mine if isinstance(result, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(_waits(mine))

    async def _run(self, groups: Sequence[Sequence[QuotaCheck]], now: str) -> list[float | Exception]:
        """Each group's wait, or the error that kept its slot from being decided (on a cluster: per slot)."""
        if not groups:
            return []
        connection = self._connect()
        if not connection.cluster:
            return list(await self._call(connection, groups, now))
        results: list[float | Exception] = [0.0] * len(groups)  # a group without checks is accepted
        by_slot: dict[int, list[int]] = {}
        for index, group in enumerate(groups):
            try:
                if group:
                    by_slot.setdefault(self._hash_slot(group), []).append(index)
            except ValueError as exc:
                results[index] = exc
        parts = list(by_slot.values())
        calls = [self._call(connection, [groups[i] for i in part], now) for part in parts]
        for part, outcome in zip(parts, await asyncio.gather(*calls, return_exceptions=True), strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            for position, index in enumerate(part):
                results[index] = outcome if isinstance(outcome, Exception) else outcome[position]
        return results

    def _hash_slot(self, group: Sequence[QuotaCheck]) -> int:
        from redis.crc import key_slot

        slots = {key_slot(burst_key(self._prefix, tagged(check.key, True), check.window).encode()) for check in group}
        if len(slots) > 1:
            raise ValueError("a group's checks hash to several cluster slots: their keys must share the first field")
        return slots.pop()

    async def _call(self, connection: RedisConnection, groups: Sequence[Sequence[QuotaCheck]], now: str) -> list[float]:
        clock = self._server_clock
        for _ in range(_ATTEMPTS):
            span = (float(now), float(now)) if now else clock.span(min(self._timeout, _MAX_BUDGET))
            call = build_call(groups, self._prefix, connection.cluster, now, span)
            sent = clock.now()
            reply = parse_reply(await self._script(connection, call), len(groups))
            if not now:
                clock.learn(reply.now, sent, clock.now())
            if reply.waits is not None:
                return reply.waits
        raise ValueError(f"the quota script found no declared window slot for Redis's time in {_ATTEMPTS} calls")

    @staticmethod
    async def _script(connection: RedisConnection, call: ScriptCall) -> Any:
        from redis.exceptions import ClusterDownError, NoScriptError, RedisClusterException
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        client, keys, args = connection.client, call.keys, call.args
        try:
            try:
                return await client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
            except NoScriptError:  # first call on this server (or after SCRIPT FLUSH): EVAL also caches it
                return await client.eval(SCRIPT, len(keys), *keys, *args)
        except RedisTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except (RedisConnectionError, ClusterDownError) as exc:
            raise ConnectionError(str(exc)) from exc
        except RedisClusterException as exc:  # no node reachable, or a slot no node serves
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc

    def _connect(self) -> RedisConnection:
        if self._closed:
            raise RuntimeError("the Redis quota backend is closed")
        if self._connection is None:
            self._connection = open_connection(
                self._url,
                cluster=self._cluster,
                access=self._access,
                timeout=self._timeout,
                max_connections=self._max_connections,
            )
        return self._connection


def _waits(results: Sequence[float | Exception]) -> list[float]:
    waits: list[float] = []
    for result in results:
        if isinstance(result, Exception):
            raise result
        waits.append(result)
    return waits


def build_quota_backend(config: RateLimitConfig, metrics: Metrics, clock: Clock) -> QuotaBackend:
    """The configured quota backend: memory, or Redis with the memory backend as its fallback."""
    local = MemoryQuotaBackend(clock)
    if config.backend == "memory":
        return local
    if config.backend == "redis":
        primary = RedisQuotaBackend.from_config(config)
        return FallbackQuotaBackend(
            primary, local, timeout=config.timeout, reconnect=config.reconnect, metrics=metrics, clock=clock
        )
    raise ConfigError([f"ratelimit.backend: expected memory or redis, got {config.backend!r}"])


__all__ = ["FallbackQuotaBackend", "RedisAccess", "RedisQuotaBackend", "build_quota_backend"]
