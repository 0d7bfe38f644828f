"""Parsing `ratelimit`: where quota counters live, and how to reach Redis (one server, Sentinel or Cluster; ACL
users; TLS). Pure parsing: nothing here imports redis, so `backend: memory` never loads it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .model import RateLimitConfig
from .values import boolean, one_of, positive_duration, short_name, string

if TYPE_CHECKING:
    from .loader import _Reader

_KEYS = (
    "backend",
    "url",
    "timeout",
    "key_prefix",
    "reconnect",
    "cluster",
    "username",
    "password",
    "sentinel_username",
    "sentinel_password",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
)
_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
_SENTINEL_PORT = 26379
_REDIS_PORT = 6379


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A Redis URL taken apart. For `+sentinel` schemes `hosts` are the sentinels and `service_name` the master."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]  # () for unix://
    db: int
    username: str
    password: str = field(repr=False)
    service_name: str = ""

    @property
    def tls(self) -> bool:
        """Whether connections to Redis (and to the sentinels) use TLS."""
        return self.scheme.startswith("rediss")

    @property
    def sentinel(self) -> bool:
        """Whether the hosts are sentinels to ask for the master."""
        return self.scheme.endswith("+sentinel")


def parse_redis_url(value: str) -> RedisUrl:
    """Take apart `redis[s]://[user[:password]@]host[:port][/db]`, `unix://[...@]/path[?db=N]` or
    `redis[s]+sentinel://[user[:password]@]host[:port][,host[:port]...]/service_name[/db]`; ValueError if malformed.
    """
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in _SCHEMES:
        raise ValueError(
            f"expected a redis://host:port/db URL (or rediss://, unix://, redis+sentinel://, rediss+sentinel://), "
            f"got {value!r}"
        )
    if scheme == "unix":
        parts = urlsplit(value)
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        return RedisUrl(scheme, (), _query_db(parts.query, value), username, password)
    netloc, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinel = scheme.endswith("+sentinel")
    hosts = tuple(_host(part, _SENTINEL_PORT if sentinel else _REDIS_PORT, value) for part in hostlist.split(","))
    if sentinel:
        service_name, _, db_text = path.partition("/")
        if not service_name:
            raise ValueError(f"a Sentinel URL names the master after the hosts, like /mymaster/0, got {value!r}")
        if query:
            raise ValueError(f"a Sentinel URL takes no ?options, got {value!r}")
        return RedisUrl(scheme, hosts, _db(db_text, value), unquote(username), unquote(password), unquote(service_name))
    if len(hosts) != 1:
        raise ValueError(f"expected one host (list several sentinels with redis+sentinel://), got {value!r}")
    db = _db(path, value) if path else _query_db(query, value)
    return RedisUrl(scheme, hosts, db, unquote(username), unquote(password))


def redis_url(value: Any) -> str:
    """A Redis URL, checked by `parse_redis_url` and kept as written."""
    text = string(value)
    parse_redis_url(text)
    return text


def read_ratelimit(reader: _Reader, raw: Any, path: str) -> RateLimitConfig:
    """`ratelimit: {backend: memory|redis, url, timeout, key_prefix, reconnect, cluster, username, password,
    sentinel_username, sentinel_password, tls_ca_file, tls_cert_file, tls_key_file}`."""
    data = reader.mapping(raw, path, _KEYS)
    d = RateLimitConfig()
    before = len(reader.problems)
    url = reader.field(data, path, "url", redis_url, d.url)
    url_parsed = len(reader.problems) == before
    config = RateLimitConfig(
        backend=reader.field(data, path, "backend", one_of("memory", "redis"), d.backend),
        url=url,
        timeout=reader.field(data, path, "timeout", positive_duration, d.timeout),
        key_prefix=reader.field(data, path, "key_prefix", short_name, d.key_prefix),
        reconnect=reader.field(data, path, "reconnect", positive_duration, d.reconnect),
        cluster=reader.field(data, path, "cluster", boolean, d.cluster),
        username=reader.field(data, path, "username", _name, d.username),
        password=reader.field(data, path, "password", string, d.password),
        sentinel_username=reader.field(data, path, "sentinel_username", _name, d.sentinel_username),
        sentinel_password=reader.field(data, path, "sentinel_password", string, d.sentinel_password),
        tls_ca_file=reader.field(data, path, "tls_ca_file", _readable_file, d.tls_ca_file),
        tls_cert_file=reader.field(data, path, "tls_cert_file", _readable_file, d.tls_cert_file),
        tls_key_file=reader.field(data, path, "tls_key_file", _readable_file, d.tls_key_file),
    )
    if url_parsed:  # else the url's own problem is the one to fix first
        for key, message in connection_problems(config):
            reader.problem(f"{path}.{key}", message)
    return config


def connection_problems(config: RateLimitConfig) -> list[tuple[str, str]]:
    """What doesn't fit together in a `ratelimit` section whose url parses: (key, message) pairs."""
    url = parse_redis_url(config.url)
    problems: list[tuple[str, str]] = []
    if config.cluster:
        if url.sentinel or url.scheme == "unix":
            problems.append(("cluster", f"a Redis Cluster is reached by redis:// or rediss://, not {url.scheme}://"))
        elif url.db != 0:
            problems.append(("url", f"a Redis Cluster has only database 0, got /{url.db}"))
        if "{" in config.key_prefix or "}" in config.key_prefix:
            problems.append(("key_prefix", "must not contain { or } with cluster: true (they would be the hash tag)"))
    if config.username and url.username:
        problems.append(("username", "is also in ratelimit.url: give the user in one place"))
    if config.password and url.password:
        problems.append(("password", "is also in ratelimit.url: give the password in one place"))
    if (config.sentinel_username or config.sentinel_password) and not url.sentinel:
        key = "sentinel_username" if config.sentinel_username else "sentinel_password"
        problems.append((key, "needs a redis+sentinel:// or rediss+sentinel:// url"))
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        if getattr(config, key) and not url.tls:
            problems.append((key, f"needs a rediss:// or rediss+sentinel:// url, got {url.scheme}://"))
    if bool(config.tls_cert_file) != bool(config.tls_key_file):
        missing = "tls_key_file" if config.tls_cert_file else "tls_cert_file"
        problems.append((missing, "is required with " + ("tls_cert_file" if config.tls_cert_file else "tls_key_file")))
    return problems


def _host(part: str, default_port: int, url: str) -> tuple[str, int]:
    if part.startswith("["):  # [::1]:26379
        host, _, port_text = part[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = part.partition(":")
    if not host:
        raise ValueError(f"expected host[:port] for every host, got {url!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected a port from 1 to 65535 after {host!r}, got {url!r}")
    return host, int(port_text)


def _db(text: str, url: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"expected a database number as the path, like /0, got {url!r}")
    return int(text)


def _query_db(query: str, url: str) -> int:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "db":
            return _db(value, url)
    return 0


def _name(value: Any) -> str:
    text = string(value)
    if any(ch.isspace() for ch in text):
        raise ValueError(f"expected a name without spaces, got {value!r}")
    return text


def _readable_file(value: Any) -> str:
    text = string(value)
    if not text:
        return text
    file = Path(text)
    if not file.is_file():
        raise ValueError(f"no such file: {text!r}")
    if not os.access(file, os.R_OK):
        raise ValueError(f"the relay can't read {text!r}")
    return text


__all__ = ["RedisUrl", "connection_problems", "parse_redis_url", "read_ratelimit", "redis_url"]
