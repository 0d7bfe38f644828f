"""Quota counters in Redis, shared by every replica, with the local limiter standing in while Redis is away.

One envelope is one round trip: a Lua script decides all of its groups atomically, with the arithmetic of
`relay.ratelimit.quota` and Redis's own clock (`TIME`), so replicas with skewed clocks agree on the windows.

Keys (`<prefix>` is `ratelimit.key_prefix`, `<key>` a `QuotaCheck.key`):

- `<prefix>:q:<key>:<window>:<slot>`: units used in one window slot; expires at the end of the slot (+1 s).
- `<prefix>:b:<key>:<window>`: the burst bucket's theoretical arrival time (GCRA), as a decimal string;
  expires once the bucket would be full again (+1 s).

`redis` is imported only when a `RedisQuotaBackend` first connects, so `backend: memory` never loads it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config.model import RateLimitConfig
from ..errors import ConfigError
from ..logs import log_event
from ..metrics import Metrics
from .memory import MemoryQuotaBackend
from .quota import QuotaBackend, QuotaCheck

if TYPE_CHECKING:
    from redis.asyncio import Redis

_MARGIN_MS = 1000  # keys outlive their slot or bucket a little, so no decision ever reads a key mid-expiry
_MAX_CONNECTIONS = 64

# KEYS: per check, the window counter's key without its slot, then the burst key.
# ARGV: now ('' for the server's TIME), expiry margin (ms), number of groups G, the number of checks in each
# of the G groups, then per check: limit, window, burst (-1: none), quantity.
# Returns one string per group: '0' if accepted, else the seconds to wait ('%.17g', as Redis would truncate a
# Lua number to an integer). Mirrors `MemoryQuotaBackend.consume_now` line by line.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local margin = tonumber(ARGV[2])
local ngroups = tonumber(ARGV[3])
local a = 3 + ngroups
local c = 0
local results = {}
for g = 1, ngroups do
  local wait = 0
  local counters = {}
  local tats = {}
  for _ = 1, tonumber(ARGV[3 + g]) do
    c = c + 1
    local limit = tonumber(ARGV[a + 1])
    local window = tonumber(ARGV[a + 2])
    local burst = tonumber(ARGV[a + 3])
    local quantity = ARGV[a + 4]
    local units = tonumber(quantity)
    a = a + 4
    local slot = math.floor(now / window)
    local left = (slot + 1) * window - now
    local qkey = KEYS[2 * c - 1] .. ':' .. string.format('%d', slot)
    local used = tonumber(redis.call('GET', qkey) or '0')
    if used + units > limit then wait = math.max(wait, left) end
    counters[#counters + 1] = {qkey, quantity, left}
    if burst >= 0 then
      local bkey = KEYS[2 * c]
      local stored = redis.call('GET', bkey)
      local tat = now
      if stored then tat = tonumber(stored) end
      local interval = math.huge
      if limit > 0 then interval = window / limit end
      if units > burst or interval == math.huge then
        wait = math.max(wait, window)
      else
        local new_tat = math.max(tat, now) + units * interval
        local allowed_at = new_tat - burst * interval
        if allowed_at <= now then
          tats[#tats + 1] = {bkey, new_tat, window}
        else
          wait = math.max(wait, allowed_at - now)
        end
      end
    end
  end
  if wait == 0 then
    for _, e in ipairs(counters) do
      redis.call('INCRBY', e[1], e[2])
      redis.call('PEXPIRE', e[1], string.format('%d', math.ceil(e[3] * 1000) + margin))
    end
    for _, e in ipairs(tats) do
      local ttl = math.ceil((e[2] + e[3] - now) * 1000) + margin
      redis.call('SET', e[1], string.format('%.17g', e[2]), 'PX', string.format('%d', ttl))
    end
    results[g] = '0'
  else
    results[g] = string.format('%.17g', wait)
  end
end
return results
"""
_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


_MAX_COALESCED = 1024  # callers per script call


class RedisQuotaBackend:
    """Quota counters in Redis: one atomic script call per `consume`, or per burst of concurrent ones.

    Calls that arrive in the same event-loop turn are coalesced into one script call (their groups
    decided in arrival order), so a spike of envelopes costs a few round trips, not one connection each.
    """

    # Failures surface as the builtin TimeoutError or ConnectionError (for the fallback to sort without
    # importing redis), anything else as the Redis error itself.

    name = "redis"

    def __init__(self, url: str, key_prefix: str, timeout: float, *, max_connections: int = _MAX_CONNECTIONS) -> None:
        self._url = url
        self._prefix = key_prefix
        self._timeout = timeout
        self._max_connections = max_connections
        self._client: Redis | None = None
        self._closed = False
        self._pending: list[tuple[Sequence[Sequence[QuotaCheck]], asyncio.Future[list[float]]]] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Prepare the connection pool; connections open on first use, so a Redis that is down doesn't stop us."""
        self._connect()

    async def close(self) -> None:
        """Close the pool's connections; idempotent."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

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

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), _MAX_COALESCED):
            task = asyncio.get_running_loop().create_task(self._send(batch[start : start + _MAX_COALESCED]))
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    async def _send(self, batch: list[tuple[Sequence[Sequence[QuotaCheck]], asyncio.Future[list[float]]]]) -> None:
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
            if not future.done():
                future.set_result(results[offset : offset + len(groups)])
            offset += len(groups)

    async def consume_at(self, groups: Sequence[Sequence[QuotaCheck]], now: float) -> list[float]:
        """The decision at wall-clock time `now` instead of Redis's; for tests and comparisons."""
        return await self._run(groups, repr(float(now)))

    async def _run(self, groups: Sequence[Sequence[QuotaCheck]], now: str) -> list[float]:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import NoScriptError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if not groups:
            return []
        client = self._connect()
        keys: list[str] = []
        args: list[str | int] = [now, _MARGIN_MS, len(groups), *(len(group) for group in groups)]
        for group in groups:
            for check in group:
                keys.append(f"{self._prefix}:q:{check.key}:{check.window}")
                keys.append(f"{self._prefix}:b:{check.key}:{check.window}")
                args.extend((check.limit, check.window, -1 if check.burst is None else check.burst, check.quantity))
        try:
            try:
                raw = await client.evalsha(_SCRIPT_SHA, len(keys), *keys, *args)
            except NoScriptError:  # first call on this server (or after SCRIPT FLUSH): EVAL also caches it
                raw = await client.eval(_SCRIPT, len(keys), *keys, *args)
        except RedisTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except RedisConnectionError as exc:
            raise ConnectionError(str(exc)) from exc
        return _parse(raw, len(groups))

    def _connect(self) -> Redis:
        if self._closed:
            raise RuntimeError("the Redis quota backend is closed")
        if self._client is None:
            from redis.asyncio import BlockingConnectionPool, Redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: the script writes, and a retried write may count twice. The timeouts bound every wait
            # (connect, pool, reply) so that a dead or hung Redis costs at most `timeout`.
            pool = BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=self._timeout,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),
                protocol=2,  # no HELLO: a new connection needs no round trip before its first script
                driver_info=None,  # and no CLIENT SETINFO either
            )
            self._client = Redis.from_pool(pool)
        return self._client


def _parse(raw: Any, count: int) -> list[float]:
    if not isinstance(raw, list) or len(raw) != count:
        raise ValueError(f"unexpected quota script reply: {type(raw).__name__}")
    return [float(value) for value in raw]


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


def build_quota_backend(config: RateLimitConfig, metrics: Metrics, clock: Clock) -> QuotaBackend:
    """The configured quota backend: memory, or Redis with the memory backend as its fallback."""
    local = MemoryQuotaBackend(clock)
    if config.backend == "memory":
        return local
    if config.backend == "redis":
        primary = RedisQuotaBackend(config.url, config.key_prefix, config.timeout)
        return FallbackQuotaBackend(
            primary, local, timeout=config.timeout, reconnect=config.reconnect, metrics=metrics, clock=clock
        )
    raise ConfigError([f"ratelimit.backend: expected memory or redis, got {config.backend!r}"])


__all__ = ["FallbackQuotaBackend", "RedisQuotaBackend", "build_quota_backend"]
