"""Hosts as network namespaces, joined by point-to-point veth links that a test can cut and heal.

Every host has one address, a /32 on its loopback; every link is a veth pair with a /32 route on each side, so
a host reaches exactly the hosts it has a link to and nothing is forwarded. Each replica has a link of its own to
Redis, to the upstream and to the clients, so one path can be cut without touching the others.

A cut sets the far end of the link down (the end in Redis's or the upstream's namespace). The near end loses its
carrier and drops what it sends, and the far end's route back is flushed with it: a silent black hole both ways,
as a partition looks to the replica (timeouts, never "connection refused"). Healing sets the end up again and
puts both routes back.

Namespace names carry the pid of the process that built them, so a run killed before its clean-up is found and
removed by the next one (`reap_stale`), and concurrent runs never share a name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

PREFIX = "rtier-"


def ip_binary() -> str | None:
    """iproute2's `ip`, also where root's PATH lacks /usr/sbin."""
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)


def run_ip(*args: str) -> str:
    """Run `ip` with these arguments; raises with its stderr when it fails."""
    binary = ip_binary()
    assert binary is not None, "iproute2's ip is not installed"
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass
class Topology:
    """Named hosts (host name -> address) and the links between them, built in fresh namespaces."""

    hosts: dict[str, str]
    links: list[tuple[str, str]]
    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(3)}")
    built: list[str] = field(default_factory=list)  # namespaces created so far, for clean-up

    def ns(self, host: str) -> str:
        """The namespace of a host."""
        return f"{PREFIX}{self.run_id}-{host}"

    def exec_argv(self, host: str, argv: list[str]) -> list[str]:
        """A command line that runs `argv` on `host` (`ip netns exec` execs it: the pid is the program's own)."""
        binary = ip_binary()
        assert binary is not None
        return [binary, "netns", "exec", self.ns(host), *argv]

    def build(self) -> None:
        """Create every namespace, address and link."""
        for host, address in self.hosts.items():
            run_ip("netns", "add", self.ns(host))
            self.built.append(self.ns(host))
            run_ip("-n", self.ns(host), "link", "set", "lo", "up")
            run_ip("-n", self.ns(host), "addr", "add", f"{address}/32", "dev", "lo")
        for near, far in self.links:
            # Created inside the near namespace with its peer placed in the far one: no name in the host's namespace.
            run_ip(
                "-n",
                self.ns(near),
                "link",
                "add",
                f"to-{far}",
                "type",
                "veth",
                "peer",
                "name",
                f"to-{near}",
                "netns",
                self.ns(far),
            )
            for host, peer in ((near, far), (far, near)):
                run_ip("-n", self.ns(host), "link", "set", f"to-{peer}", "up")
                self._route(host, peer)

    def _route(self, host: str, peer: str) -> None:
        run_ip(
            "-n",
            self.ns(host),
            "route",
            "replace",
            f"{self.hosts[peer]}/32",
            "dev",
            f"to-{peer}",
            "src",
            self.hosts[host],
        )

    def cut(self, near: str, far: str) -> None:
        """Black-hole the link between `near` and `far` both ways (its end on `far` goes down)."""
        run_ip("-n", self.ns(far), "link", "set", f"to-{near}", "down")

    def heal(self, near: str, far: str) -> None:
        """Bring a cut link back, with the routes the cut flushed."""
        run_ip("-n", self.ns(far), "link", "set", f"to-{near}", "up")
        self._route(far, near)
        self._route(near, far)

    def destroy(self) -> list[str]:
        """Kill whatever still runs in the namespaces (all of it started by this run), then delete them.

        Deleting a namespace deletes its veth ends, and with them their peers. Returns the problems met.
        """
        problems = []
        for name in reversed(self.built):
            problems += remove_namespace(name)
        self.built.clear()
        return problems


def remove_namespace(name: str) -> list[str]:
    """SIGKILL the processes in one namespace and delete it; the problems met, if any."""
    problems = []
    with contextlib.suppress(RuntimeError):
        for pid in run_ip("netns", "pids", name).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    try:
        run_ip("netns", "del", name)
    except RuntimeError as exc:
        problems.append(str(exc))
    return problems


def reap_stale() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone (a run that was killed before its clean-up)."""
    removed = []
    for line in run_ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        remove_namespace(name)
        removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["PREFIX", "Topology", "ip_binary", "reap_stale", "remove_namespace", "run_ip"]
