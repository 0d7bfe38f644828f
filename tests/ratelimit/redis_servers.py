"""Real Redis topologies for tests: a Redis Cluster, a Sentinel-managed master, TLS and ACL servers.

Every server is a `redis-server` process on a free port, with its files in a temporary directory that is
deleted afterwards. Servers start in parallel and are polled until ready. Tests skip (saying why) only when
`redis-server` is not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

SERVICE = "mymaster"


def redis_binaries() -> tuple[str, str]:
    """Paths of redis-server and redis-cli; skips the test when they aren't installed."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are not installed: no Redis Cluster, Sentinel or TLS server to test")
    return server, cli


def free_ports(count: int, *, bus: bool = False) -> list[int]:
    """Ports nothing listens on; with `bus`, port + 10000 (a cluster node's bus port) is free too."""
    ports: list[int] = []
    candidate = 20000
    while len(ports) < count:
        candidate += 1 + (time.monotonic_ns() // 1000) % 97
        wanted = [candidate, candidate + 10000] if bus else [candidate]
        if candidate + 10000 > 65535:
            candidate = 20000
            continue
        if all(_is_free(port) for port in wanted) and candidate not in ports:
            ports.append(candidate)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Poll until `condition()` holds; returns the seconds it took, fails the test after `timeout`."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}", pytrace=False)
        time.sleep(interval)


class Servers:
    """redis-server processes in one temporary directory; `close()` stops them all and deletes it."""

    def __init__(self, name: str) -> None:
        self.binary, self.cli = redis_binaries()
        self.dir = Path(tempfile.mkdtemp(prefix=f"relay-{name}-"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, port: int, *args: str, config: str | None = None) -> None:
        """Start one server (from a config file written here, for sentinels) without waiting for it."""
        command = [self.binary]
        if config is not None:
            path = self.dir / f"sentinel-{port}.conf"
            path.write_text(config)
            command += [str(path), "--sentinel"]
        command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--daemonize", "no"]
        command += ["--logfile", str(self.dir / f"{port}.log"), *args]
        if config is None:  # a data node: no files, and a replica's first sync starts at once (not after 5 s)
            command += ["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        self.procs[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self, port: int, **kwargs: Any) -> redis.Redis:
        """A synchronous client for one server."""
        return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1, **kwargs)

    def wait_ready(self, ports: list[int], timeout: float = 10.0, **kwargs: Any) -> None:
        """Wait until every one of these servers answers PING."""
        for port in ports:
            client = self.client(port, **kwargs)

            def answers(port: int = port, client: redis.Redis = client) -> bool:
                proc = self.procs[port]
                if proc.poll() is not None:
                    log = (self.dir / f"{port}.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"redis-server on port {port} exited: {log}", pytrace=False)
                return bool(client.ping())

            wait_until(answers, timeout, f"redis-server on port {port}")
            client.close()

    def kill(self, port: int) -> None:
        """SIGKILL one server: it vanishes without closing anything."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def close(self) -> None:
        """Stop every server and delete the directory."""
        for proc in self.procs.values():
            proc.kill()
        for proc in self.procs.values():
            proc.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


class ClusterServers(Servers):
    """Six nodes made a Redis Cluster of 3 masters with a replica each, by `redis-cli --cluster create`."""

    def __init__(self) -> None:
        super().__init__("cluster")
        self.ports = free_ports(6, bus=True)

    def start(self) -> float:
        """Start the nodes in parallel, create the cluster, wait for `cluster_state:ok`; the seconds it took."""
        started = time.monotonic()
        for port in self.ports:
            self.spawn(
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
            )
        self.wait_ready(self.ports)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            client = self.client(port)
            wait_until(lambda c=client: _cluster_ok(c), 30, f"cluster_state:ok on node {port}", 0.05)
            client.close()
        return time.monotonic() - started

    @property
    def url(self) -> str:
        """A URL naming one node."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def masters(self) -> dict[str, tuple[int, list[tuple[int, int]]]]:
        """Each master's node id, port and slot ranges."""
        client = self.client(self.ports[0])
        found: dict[str, tuple[int, list[tuple[int, int]]]] = {}
        for line in client.execute_command("CLUSTER", "NODES").decode().splitlines():
            fields = line.split()
            if "master" not in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            ranges = [
                (int(part.split("-")[0]), int(part.split("-")[-1])) for part in fields[8:] if not part.startswith("[")
            ]
            found[fields[0]] = (port, ranges)
        client.close()
        return found

    def owner(self, slot: int) -> tuple[str, int]:
        """The node id and port of the master that serves a slot."""
        for node_id, (port, ranges) in self.masters().items():
            if any(low <= slot <= high for low, high in ranges):
                return node_id, port
        raise AssertionError(f"no master serves slot {slot}")


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER", "INFO").decode()
    if not ("cluster_state:ok" in info and "cluster_slots_ok:16384" in info and "cluster_known_nodes:6" in info):
        return False
    roles = [line.split()[2] for line in client.execute_command("CLUSTER", "NODES").decode().splitlines()]
    return sum("slave" in flags for flags in roles) == 3  # and this node knows who replicates whom


class SentinelServers(Servers):
    """A master, two replicas and three sentinels watching them (quorum 2, a master is down after 1 s)."""

    def __init__(self) -> None:
        super().__init__("sentinel")
        self.master, *self.replicas = free_ports(3)
        self.sentinels = free_ports(3)

    def start(self) -> float:
        """Start the data nodes and sentinels in parallel, wait until every sentinel sees all; the seconds it took."""
        started = time.monotonic()
        self.spawn(self.master)
        for port in self.replicas:
            self.spawn(port, "--replicaof", "127.0.0.1", str(self.master))
        ids = {port: f"{port:040x}" for port in self.sentinels}
        for port in self.sentinels:
            # Each sentinel is told about the replicas and the other sentinels, instead of finding them by its
            # periodic INFO (every 10 s) and hello messages (every 2 s): the setup is ready in a moment.
            known = [f"sentinel known-replica {SERVICE} 127.0.0.1 {replica}" for replica in self.replicas]
            known += [f"sentinel known-sentinel {SERVICE} 127.0.0.1 {p} {ids[p]}" for p in self.sentinels if p != port]
            self.spawn(
                port,
                config="\n".join(
                    [
                        f"sentinel myid {ids[port]}",
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.master} 2",
                        f"sentinel down-after-milliseconds {SERVICE} 1000",
                        f"sentinel failover-timeout {SERVICE} 5000",
                        f"sentinel parallel-syncs {SERVICE} 2",
                        *known,
                        "",
                    ]
                ),
            )
        self.wait_ready([self.master, *self.replicas, *self.sentinels])
        for port in self.sentinels:
            client = self.client(port)
            wait_until(lambda c=client: self._sees_everyone(c), 30, f"sentinel {port} to see the others", 0.05)
            client.close()
        return time.monotonic() - started

    @staticmethod
    def _sees_everyone(client: redis.Redis) -> bool:
        state = client.sentinel_master(SERVICE)
        return bool(int(state["num-slaves"]) >= 2 and int(state["num-other-sentinels"]) >= 2)

    @property
    def url(self) -> str:
        """The redis+sentinel:// URL of the service."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def current_master(self) -> int:
        """The port the first live sentinel names as master."""
        for port in self.sentinels:
            if port not in self.procs:
                continue
            client = self.client(port)
            try:
                host_port = client.sentinel_get_master_addr_by_name(SERVICE)
            finally:
                client.close()
            if host_port:
                return int(host_port[1])
        raise AssertionError("no sentinel names a master")


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificates for the TLS tests")
    files = {name: directory / name for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt")}
    files["client.key"] = directory / "client.key"
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)

    run("req", "-x509", *key, "-keyout", str(files["ca.key"]), "-out", str(files["ca.crt"]), "-days", "2",
        "-subj", "/CN=relay test CA")  # fmt: skip
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        csr = directory / f"{name}.csr"
        run("req", *key, "-keyout", str(files[f"{name}.key"]), "-out", str(csr), "-subj", f"/CN=relay test {name}")
        ext = directory / f"{name}.ext"
        ext.write_text(extension + "\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(files["ca.crt"]), "-CAkey", str(files["ca.key"]),
            "-CAcreateserial", "-out", str(files[f"{name}.crt"]), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return files


def tls_supported(binary: str) -> bool:
    """Whether this redis-server was built with TLS (an unknown `--tls-port` makes it exit with an error)."""
    done = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0", "--save", "", "--daemonize", "no"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "not listen anywhere" in done.stdout + done.stderr


__all__ = [
    "SERVICE",
    "ClusterServers",
    "SentinelServers",
    "Servers",
    "free_ports",
    "make_tls_files",
    "redis_binaries",
    "tls_supported",
    "wait_until",
]
