"""Chaos run for the durable spool: SIGKILL the relay and take the upstream down while clients keep sending.

Run with `make chaos` (or `.venv/bin/python bench/chaos.py --help`). Three parties, two processes:

* this process hosts a fake upstream (an aiohttp server recording every event id it accepts; it can
  go down, i.e. stop listening and drop its connections, and come back on the same port) and
  `--clients` concurrent aiohttp clients posting distinct events (unique `event_id`) to the relay;
* the relay, `python -m relay run --config <tmp>/relay.yml`, with a SQLite spool in a temp dir
  (fsync on, default scrubbing rules), restarted on the same port and spool after every kill.

During `--duration` seconds the relay is SIGKILLed at random moments (`--kills`, restarted 0.5-2 s
later) and the upstream is down for `--outage-seconds` (`--outages` times). A client counts an event
as acknowledged only when the relay answered 200; connection errors and 503s are simply not acked.
After the load the script waits (up to `--drain-timeout`) until every acknowledged id has reached
the upstream. The invariant: acknowledged but not delivered must be 0 (duplicates are allowed).
Figures go to bench/results/chaos.json; the exit code is 1 when the invariant is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "chaos.json"
PYTHON = ROOT / ".venv" / "bin" / "python"

LOCAL_KEY = "0123456789abcdef0123456789abcdef"
LOCAL_PROJECT = 42
UPSTREAM_KEY = "fedcba9876543210fedcba9876543210"
UPSTREAM_PROJECT = 4501
AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={LOCAL_KEY}, sentry_client=chaos/1.0"}


def free_port() -> int:
    """A local TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int, field_name: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def event_envelope(event_id: str, rng: random.Random, pad: int = 0) -> bytes:
    """A Python-SDK-like error event with some PII for the scrubber, about 0.7 KB (+ `pad` bytes)."""
    user = rng.randint(1, 10**6)
    event = {
        "event_id": event_id,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "logger": "app.checkout",
        "message": f"payment failed for order {rng.randint(1, 10**7)}",
        "user": {"id": str(user), "email": f"user{user}@example.com", "ip_address": "10.1.2.3"},
        "tags": {"release": "app@1.4.2", "environment": "production"},
        "extra": {"card": "4111 1111 1111 1111", "amount": rng.randint(1, 99_999), "note": "x" * pad},
        "exception": {
            "values": [
                {
                    "type": "PaymentError",
                    "value": "card declined",
                    "stacktrace": {
                        "frames": [
                            {"filename": "app/views.py", "function": "checkout", "lineno": rng.randint(1, 500)},
                            {"filename": "app/billing.py", "function": "charge", "lineno": rng.randint(1, 500)},
                        ]
                    },
                }
            ]
        },
    }
    payload = orjson.dumps(event)
    header = {
        "event_id": event_id,
        "sent_at": "2024-01-01T00:00:00Z",
        "dsn": f"http://{LOCAL_KEY}@127.0.0.1/{LOCAL_PROJECT}",
        "sdk": {"name": "sentry.python", "version": "2.19.0"},
    }
    item = {"type": "event", "length": len(payload), "content_type": "application/json"}
    return b"".join([orjson.dumps(header), b"\n", orjson.dumps(item), b"\n", payload, b"\n"])


# -- the fake upstream ---------------------------------------------------------------------------


class FakeUpstream:
    """A Sentry stand-in on a fixed port that records event ids and can go down and come back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.delivered: Counter[str] = Counter()
        self.requests = 0
        self.refused = 0
        self.up = False
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_post("/api/{project}/envelope/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()  # aiohttp undoes the relay's gzip
        if not self.up:  # a request that slipped in on a connection opened before we went down
            self.refused += 1
            return web.json_response({"detail": "down"}, status=503)
        header = orjson.loads(body.split(b"\n", 1)[0])
        event_id = header.get("event_id")
        if event_id:
            self.delivered[str(event_id)] += 1
        return web.json_response({"id": event_id})

    async def start(self) -> None:
        """Listen on the port (again)."""
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        for attempt in range(50):
            try:
                await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
                break
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self._runner = runner
        self.up = True

    async def stop(self) -> None:
        """Stop listening and drop every open connection: the relay sees refused connections."""
        self.up = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# -- the relay process ------------------------------------------------------------------------------


def relay_config(port: int, upstream_url: str, spool_dir: Path, *, retry_max: str, probe_max: str) -> str:
    """The relay's YAML: a SQLite spool with fsync, default scrubbing, project 42 routed to the fake upstream."""
    dsn = upstream_url.replace("://", f"://{UPSTREAM_KEY}@") + f"/{UPSTREAM_PROJECT}"
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: {upstream_url}
  timeout: 5s
  connect_timeout: 2s
  retry: {{initial: 100ms, max: {retry_max}}}
  outage: {{after_failures: 5, probe_max: {probe_max}}}
shutdown_timeout: 5s
log: {{level: warning, format: json}}
spool: {{backend: sqlite, path: "{spool_dir}", fsync: true}}
projects:
  - id: {LOCAL_PROJECT}
    keys: ["{LOCAL_KEY}"]
    upstream_dsn: "{dsn}"
"""


@dataclass
class RelayRunner:
    """Starts, kills and restarts `python -m relay run` on one port and one spool."""

    config: Path
    port: int
    workdir: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    peaks: list[int] = field(default_factory=list)  # VmHWM of each finished process, bytes
    exit_codes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The relay's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start a relay process; its stderr goes to relay-<n>.log in the work dir."""
        log = open(self.workdir / f"relay-{self.starts}.log", "wb")  # noqa: SIM115 (closed with the process)
        python = PYTHON if PYTHON.exists() else Path(sys.executable)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("RELAY_CONFIG", None)
        self.proc = await asyncio.create_subprocess_exec(
            str(python), "-m", "relay", "run", "--config", str(self.config),
            cwd=str(self.workdir), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        log.close()
        self.starts += 1

    def peak_now(self) -> int:
        """VmHWM of the running process, bytes."""
        return proc_status(self.proc.pid, "VmHWM") if self.proc and self.proc.returncode is None else 0

    async def kill(self) -> None:
        """SIGKILL the relay (its peak RSS is read first)."""
        assert self.proc is not None
        self.peaks.append(self.peak_now())
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.exit_codes.append(await self.proc.wait())

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM the relay and wait for it."""
        assert self.proc is not None
        self.peaks.append(self.peak_now())
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        self.exit_codes.append(code)
        return code

    async def wait_ready(self, session: ClientSession, timeout: float = 30.0) -> float:
        """Poll /readyz until 200; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode}; see {self.workdir}")
            with contextlib.suppress(ClientError, OSError, asyncio.TimeoutError):
                async with session.get(f"{self.url}/readyz", timeout=ClientTimeout(total=1)) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise RuntimeError(f"relay not ready after {timeout}s; see {self.workdir}")

    async def metric(self, session: ClientSession, name: str) -> float | None:
        """One unlabelled sample from /metrics, or None if the relay does not answer."""
        try:
            async with session.get(f"{self.url}/metrics", timeout=ClientTimeout(total=5)) as resp:
                text = await resp.text()
        except (TimeoutError, ClientError, OSError):
            return None
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else None


# -- load ---------------------------------------------------------------------------------------------


@dataclass
class Load:
    """What the clients sent and which event ids the relay acknowledged."""

    sent: int = 0
    acked: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)


async def client_loop(n: int, seed: int, relay: RelayRunner, session: ClientSession, until: float, load: Load) -> None:
    """Post distinct events until `until` (monotonic); a 200 is an acknowledgement, anything else is not."""
    rng = random.Random(seed * 1000 + n)
    while time.monotonic() < until:
        event_id = f"{rng.getrandbits(128):032x}"
        body = event_envelope(event_id, rng)
        load.sent += 1
        try:
            async with session.post(
                f"{relay.url}/api/{LOCAL_PROJECT}/envelope/", data=body, headers=AUTH, timeout=ClientTimeout(total=10)
            ) as resp:
                await resp.read()
                load.statuses[str(resp.status)] += 1
                if resp.status == 200:
                    load.acked.add(event_id)
                else:
                    await asyncio.sleep(0.05)
        except (TimeoutError, ClientError, OSError) as exc:
            load.statuses[type(exc).__name__] += 1
            await asyncio.sleep(0.05)  # the relay is restarting: try again shortly, with a new event


def schedule(
    rng: random.Random, duration: float, kills: int, outages: int, outage_len: float
) -> list[tuple[float, str]]:
    """Times (seconds into the load) of kills and of upstream downs/ups, seeded."""
    events: list[tuple[float, str]] = []
    span = duration / max(1, outages)
    for i in range(outages):
        start = i * span + rng.uniform(0.1, 0.25) * max(0.0, span - outage_len)
        events += [(start, "upstream_down"), (start + outage_len, "upstream_up")]
    slot = (duration - 4.0) / max(1, kills)
    for i in range(kills):
        events.append((2.0 + i * slot + rng.uniform(0.1, 0.7) * slot, "kill"))
    return sorted(events)


async def chaos_driver(
    plan: list[tuple[float, str]],
    rng: random.Random,
    relay: RelayRunner,
    upstream: FakeUpstream,
    started: float,
    timeline: list[dict[str, Any]],
) -> None:
    """Carry out the plan: kills (with a restart 0.5-2 s later) and upstream outages."""
    for at, action in plan:
        delay = started + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = round(time.monotonic() - started, 2)
        if action == "kill":
            await relay.kill()
            pause = rng.uniform(0.5, 2.0)
            timeline.append({"t": now, "event": "kill", "peak_rss_mb": round(relay.peaks[-1] / 2**20, 1)})
            await asyncio.sleep(pause)
            await relay.start()
            timeline.append({"t": round(time.monotonic() - started, 2), "event": "restart"})
        elif action == "upstream_down":
            await upstream.stop()
            timeline.append({"t": now, "event": "upstream_down"})
        elif action == "upstream_up":
            await upstream.start()
            timeline.append({"t": now, "event": "upstream_up"})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole chaos run; returns the report."""
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="relay-chaos-"))
    upstream = FakeUpstream(free_port())
    await upstream.start()
    port = free_port()
    config = workdir / "relay.yml"
    config.write_text(
        relay_config(port, upstream.url, workdir / "spool", retry_max=args.retry_max, probe_max=args.probe_max)
    )
    relay = RelayRunner(config, port, workdir)
    outage_len = min(args.outage_seconds, max(1.0, (args.duration - 10.0) / max(1, args.outages) * 0.8))
    plan = schedule(rng, args.duration, args.kills, args.outages, outage_len)
    load = Load()
    timeline: list[dict[str, Any]] = []

    connector = TCPConnector(limit=args.clients * 2)
    async with ClientSession(connector=connector) as session:
        await relay.start()
        await relay.wait_ready(session)
        print(f"chaos: {args.duration:.0f}s, {args.clients} clients, seed {args.seed}, work dir {workdir}")
        print("plan: " + ", ".join(f"{a}@{t:.1f}s" for t, a in plan))
        started = time.monotonic()
        until = started + args.duration
        driver = asyncio.create_task(chaos_driver(plan, rng, relay, upstream, started, timeline))
        clients = [client_loop(n, args.seed, relay, session, until, load) for n in range(args.clients)]
        await asyncio.gather(*clients)
        await driver
        load_seconds = time.monotonic() - started
        if not upstream.up:
            await upstream.start()
        await relay.wait_ready(session)
        print(f"load done in {load_seconds:.1f}s: sent {load.sent}, acked {len(load.acked)}; draining")

        drain_started = time.monotonic()
        while time.monotonic() - drain_started < args.drain_timeout:
            if load.acked <= upstream.delivered.keys():
                break
            await asyncio.sleep(0.25)
        drain_seconds = time.monotonic() - drain_started
        left_in_spool = await relay.metric(session, "relay_spool_entries")
        code = await relay.terminate()

    delivered = upstream.delivered
    missing = sorted(load.acked - delivered.keys())
    report = {
        "seed": args.seed,
        "duration_s": args.duration,
        "clients": args.clients,
        "outage_seconds": outage_len,
        "sent": load.sent,
        "acknowledged": len(load.acked),
        "delivered_distinct": len(delivered),
        "delivered_total": sum(delivered.values()),
        "acknowledged_not_delivered": len(missing),
        "missing_sample": missing[:20],
        "duplicates_delivered": sum(c - 1 for c in delivered.values() if c > 1),
        "delivered_not_acknowledged": len(delivered.keys() - load.acked),
        "kills": sum(1 for e in timeline if e["event"] == "kill"),
        "outages": sum(1 for e in timeline if e["event"] == "upstream_down"),
        "relay_starts": relay.starts,
        "peak_rss_mb": round(max(relay.peaks, default=0) / 2**20, 1),
        "peak_rss_mb_per_process": [round(p / 2**20, 1) for p in relay.peaks],
        "client_results": dict(load.statuses),
        "upstream_requests": upstream.requests,
        "upstream_503_while_down": upstream.refused,
        "drain_seconds": round(drain_seconds, 2),
        "spool_entries_after_drain": left_in_spool,
        "final_exit_code": code,
        "timeline": timeline,
        "config": {"retry_max": args.retry_max, "probe_max": args.probe_max, "fsync": True, "rules": "default"},
        "work_dir": str(workdir),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    return report


def main() -> int:
    """Parse arguments, run, print and save the report; exit 1 if an acknowledged event was lost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--outages", type=int, default=2)
    parser.add_argument("--outage-seconds", type=float, default=20.0)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--retry-max", default="5s", help="the relay's upstream.retry.max")
    parser.add_argument("--probe-max", default="2s", help="the relay's upstream.outage.probe_max")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    keys = (
        "sent",
        "acknowledged",
        "delivered_distinct",
        "acknowledged_not_delivered",
        "duplicates_delivered",
        "delivered_not_acknowledged",
        "kills",
        "outages",
        "peak_rss_mb",
        "drain_seconds",
    )
    width = max(map(len, keys))
    for key in keys:
        print(f"{key:<{width}}  {report[key]}")
    print(f"written to {args.output}")
    if report["acknowledged_not_delivered"]:
        print(f"FAIL: {report['acknowledged_not_delivered']} acknowledged events never reached the upstream")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
