"""Redis with TLS (`rediss://`, certificates made by openssl) and ACL users, configured as operators would:
through the `ratelimit` section, loaded by the real config loader. The servers are started by these tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.clock import SystemClock
from relay.config import parse_config
from relay.metrics import Metrics
from relay.ratelimit.fallback import FallbackQuotaBackend
from relay.ratelimit.quota import QuotaCheck
from relay.ratelimit.redis import build_quota_backend

from .redis_servers import SERVICE, Servers, free_ports, make_tls_files, tls_supported

LIMIT = 5


@dataclass
class TlsSetup:
    """Certificates and TLS-only servers: one verifies client certificates, one doesn't, and a sentinel."""

    files: dict[str, Path]
    optional: int  # tls-auth-clients optional
    required: int  # tls-auth-clients yes
    master: int  # a TLS master watched by `sentinel`
    sentinel: int


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsSetup]:
    """TLS servers started in parallel, with an ACL user `relay`; skipped if redis-server lacks TLS."""
    servers = Servers("tls")
    if not tls_supported(servers.binary):
        servers.close()
        pytest.skip("this redis-server was built without TLS (--tls-port is unknown to it)")
    try:
        files = make_tls_files(servers.dir)
        optional, required, master, sentinel = free_ports(4)
        tls_args = ["--tls-cert-file", str(files["server.crt"]), "--tls-key-file", str(files["server.key"])]
        tls_args += ["--tls-ca-cert-file", str(files["ca.crt"])]
        for port, auth in ((optional, "optional"), (required, "yes"), (master, "optional")):
            servers.spawn(port, "--port", "0", "--tls-port", str(port), "--tls-auth-clients", auth, *tls_args)
        sentinel_config = f"sentinel monitor {SERVICE} 127.0.0.1 {master} 1\ntls-replication yes\n"
        servers.spawn(sentinel, "--port", "0", "--tls-port", str(sentinel), *tls_args, config=sentinel_config)
        client_tls = {
            "ssl": True,
            "ssl_ca_certs": str(files["ca.crt"]),
            "ssl_certfile": str(files["client.crt"]),
            "ssl_keyfile": str(files["client.key"]),
        }
        servers.wait_ready([optional, required, master, sentinel], **client_tls)
        for port in (optional, required, master):
            admin = servers.client(port, **client_tls)
            admin.execute_command("ACL", "SETUSER", "relay", "on", ">pw", "~*", "+@all")
            admin.close()
        yield TlsSetup(files, optional, required, master, sentinel)
    finally:
        servers.close()


@pytest.fixture(scope="module")
def acl_port() -> Iterator[int]:
    """A plain-TCP server whose default user is off: only ACL users get in."""
    servers = Servers("acl")
    try:
        [port] = free_ports(1)
        servers.spawn(port)
        servers.wait_ready([port])
        admin = servers.client(port)
        admin.execute_command("ACL", "SETUSER", "relay", "on", ">pw", "~*", "+@all")
        # The least the quota script needs: its two commands, the ones it calls, and keys under its prefix.
        scoped = ["+evalsha", "+eval", "+time", "+get", "+set", "+incrby", "+pexpire"]
        admin.execute_command("ACL", "SETUSER", "scoped", "on", ">pw2", "~scoped:*", *scoped)
        admin.execute_command("ACL", "SETUSER", "default", "off")
        admin.close()
        yield port
    finally:
        servers.close()


def quotas(section: str) -> tuple[FallbackQuotaBackend, Metrics]:
    """The quota backend a `ratelimit` section (YAML flow mapping body) builds, through the real loader."""
    config = parse_config(f"ratelimit: {{backend: redis, timeout: 2s, {section}}}\n", "relay.yml", {})
    metrics = Metrics()
    backend = build_quota_backend(config.ratelimit, metrics, SystemClock())
    assert isinstance(backend, FallbackQuotaBackend)
    return backend, metrics


async def accepted_of(backend: FallbackQuotaBackend, tries: int = LIMIT + 3) -> int:
    """How many of `tries` one-unit checks against a fresh quota of LIMIT are accepted."""
    check = QuotaCheck(f"7:{uuid.uuid4().hex[:8]}:project:7", LIMIT, 86400, None, 1)
    await backend.start()
    try:
        return sum([(await backend.consume([[check]]))[0] == 0.0 for _ in range(tries)])
    finally:
        await backend.close()


def errors(metrics: Metrics, kind: str) -> float:
    """relay_ratelimit_backend_errors_total of one kind."""
    labels = {"backend": "redis", "error": kind}
    return metrics.registry.get_sample_value("relay_ratelimit_backend_errors_total", labels) or 0.0


def tls_keys(setup: TlsSetup, *, client_cert: bool = True, ca: str = "ca.crt") -> str:
    """The tls_* keys of a `ratelimit` section."""
    keys = f"tls_ca_file: '{setup.files[ca]}'"
    if client_cert:
        keys += f", tls_cert_file: '{setup.files['client.crt']}', tls_key_file: '{setup.files['client.key']}'"
    return keys


async def test_rediss_with_an_acl_user_in_the_url(tls: TlsSetup) -> None:
    """rediss://relay:pw@... with the CA that signed the server's certificate: Redis decides, exactly."""
    backend, metrics = quotas(
        f"url: 'rediss://relay:pw@127.0.0.1:{tls.optional}/0', {tls_keys(tls, client_cert=False)}"
    )
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") + errors(metrics, "error") == 0


async def test_mutual_tls_with_a_client_certificate_and_password_key(tls: TlsSetup) -> None:
    """A server with tls-auth-clients yes takes the client certificate; the credentials come from their own keys."""
    section = f"url: 'rediss://127.0.0.1:{tls.required}/0', username: relay, password: pw, {tls_keys(tls)}"
    backend, metrics = quotas(section)
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") == 0


async def test_without_a_client_certificate_the_local_limiter_decides(tls: TlsSetup) -> None:
    """The server refuses a client without a certificate: a connection error, and the local limiter answers."""
    backend, metrics = quotas(f"url: 'rediss://127.0.0.1:{tls.required}/0', {tls_keys(tls, client_cert=False)}")
    assert await accepted_of(backend) == LIMIT  # decided locally, with the same arithmetic
    assert errors(metrics, "connection") == 1


async def test_a_certificate_from_another_ca_is_refused(tls: TlsSetup, tmp_path: Path) -> None:
    """Verification is on: a CA file that didn't sign the server's certificate makes the connection fail."""
    other = make_tls_files(tmp_path)
    section = f"url: 'rediss://127.0.0.1:{tls.optional}/0', tls_ca_file: '{other['ca.crt']}'"
    backend, metrics = quotas(section)
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") == 1


async def test_rediss_sentinel_finds_a_tls_master(tls: TlsSetup) -> None:
    """rediss+sentinel://: TLS to the sentinel and to the master it names, with an ACL user for the master."""
    url = f"rediss+sentinel://relay:pw@127.0.0.1:{tls.sentinel}/{SERVICE}/0"
    backend, metrics = quotas(f"url: '{url}', {tls_keys(tls)}")
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") + errors(metrics, "error") == 0


async def test_acl_user_over_plain_tcp(acl_port: int) -> None:
    """redis://relay:pw@...: with the default user off, the ACL user is what gets the relay in."""
    backend, metrics = quotas(f"url: 'redis://relay:pw@127.0.0.1:{acl_port}/0'")
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") == 0


async def test_wrong_password_is_a_connection_error(acl_port: int) -> None:
    """A refused AUTH counts as a connection error; the local limiter answers meanwhile."""
    backend, metrics = quotas(f"url: 'redis://127.0.0.1:{acl_port}/0', username: relay, password: nope")
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") == 1


async def test_a_user_limited_to_the_key_prefix_and_the_scripts_commands(acl_port: int) -> None:
    """`~<prefix>:* +evalsha +eval +time +get +set +incrby +pexpire` is all the quota script needs: every key
    it touches is declared, so Redis checks them against the user's key patterns before it runs."""
    backend, metrics = quotas(f"url: 'redis://scoped:pw2@127.0.0.1:{acl_port}/0', key_prefix: scoped")
    assert await accepted_of(backend) == LIMIT
    assert errors(metrics, "connection") + errors(metrics, "error") == 0
    denied, denied_metrics = quotas(f"url: 'redis://scoped:pw2@127.0.0.1:{acl_port}/0', key_prefix: other")
    assert await accepted_of(denied) == LIMIT  # NOPERM for the keys: decided locally
    assert errors(denied_metrics, "error") == 1
