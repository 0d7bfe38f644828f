"""Connections for the Redis quota backend: one server, the master a set of sentinels names, or a Redis Cluster;
with ACL users and TLS. `redis` is imported here only when a backend first connects.

Nothing is retried on a connection error or a timeout: the script writes, and a write sent twice may count
twice. Cluster redirections (`MOVED`, `ASK`) are followed, since a node that redirects has run nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.model import RateLimitConfig
from ..config.ratelimit import RedisUrl, parse_redis_url

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel


@dataclass(frozen=True, slots=True)
class RedisAccess:
    """Credentials and TLS files, beside those the URL gives (`ratelimit.username`, `tls_ca_file`, ...)."""

    username: str = ""
    password: str = field(default="", repr=False)
    sentinel_username: str = ""
    sentinel_password: str = field(default="", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""

    @classmethod
    def from_config(cls, config: RateLimitConfig) -> RedisAccess:
        """The access settings of a `ratelimit` section."""
        return cls(
            username=config.username,
            password=config.password,
            sentinel_username=config.sentinel_username,
            sentinel_password=config.sentinel_password,
            tls_ca_file=config.tls_ca_file,
            tls_cert_file=config.tls_cert_file,
            tls_key_file=config.tls_key_file,
        )


class RedisConnection:
    """A client for script calls (a cluster client routes each by its keys), and what to close with it."""

    def __init__(self, client: Redis | RedisCluster, *, cluster: bool, sentinel: Sentinel | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self._sentinel = sentinel

    async def discover(self) -> None:
        """Fetch a cluster's map of slots to nodes now rather than with the first call; a failure is left to it."""
        from redis.asyncio.cluster import RedisCluster

        if isinstance(self.client, RedisCluster):
            with contextlib.suppress(Exception):  # the first script call tries again, and reports what fails
                await self.client.initialize()

    async def close(self) -> None:
        """Close the client's connections (and the sentinels')."""
        try:
            await self.client.aclose()
        finally:
            if self._sentinel is not None:
                await self._sentinel.aclose()


def open_connection(
    url: str, *, cluster: bool, access: RedisAccess, timeout: float, max_connections: int
) -> RedisConnection:
    """A client for `url`; connections open on first use, so a Redis that is down raises only then."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.cluster import RedisCluster

    parsed = parse_redis_url(url)
    # The timeouts bound every wait (connect, reply) so that a dead or hung Redis costs at most `timeout`.
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": _no_retries(),
        "protocol": 2,  # no HELLO: a new connection needs no round trip before its first script
        "driver_info": None,  # and no CLIENT SETINFO either
        **_credentials(access.username, access.password),
        **_tls(parsed, access),
    }
    if parsed.sentinel:
        return _sentinel_master(parsed, access, options, max_connections)
    if cluster:
        return RedisConnection(RedisCluster.from_url(url, max_connections=max_connections, **options), cluster=True)
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout, **options)
    return RedisConnection(Redis.from_pool(pool), cluster=False)


def _sentinel_master(
    parsed: RedisUrl, access: RedisAccess, options: dict[str, Any], max_connections: int
) -> RedisConnection:
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import Sentinel

    # The sentinels get their own credentials (often none); TLS, if any, is the same for them and the master.
    sentinel_options = {key: value for key, value in options.items() if key not in ("username", "password")}
    sentinel_options.update(_credentials(access.sentinel_username, access.sentinel_password))
    master_options = dict(options)
    master_options.update(_credentials(parsed.username, parsed.password))
    master_options["db"] = parsed.db
    sentinel = Sentinel(list(parsed.hosts), sentinel_kwargs=sentinel_options)
    client = sentinel.master_for(
        parsed.service_name, redis_class=Redis, max_connections=max_connections, **master_options
    )
    return RedisConnection(client, cluster=False, sentinel=sentinel)


def _no_retries() -> Any:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


def _credentials(username: str, password: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if username:
        found["username"] = username
    if password:
        found["password"] = password
    return found


def _tls(parsed: RedisUrl, access: RedisAccess) -> dict[str, Any]:
    if not parsed.tls:
        return {}
    found: dict[str, Any] = {"ssl": True} if parsed.sentinel else {}  # a rediss:// URL says so by itself
    if access.tls_ca_file:
        found["ssl_ca_certs"] = access.tls_ca_file
    if access.tls_cert_file:
        found["ssl_certfile"] = access.tls_cert_file
        found["ssl_keyfile"] = access.tls_key_file
    return found


__all__ = ["RedisAccess", "RedisConnection", "open_connection"]
