"""End-to-end throughput benchmark: load generator -> relay -> fake upstream, against a direct baseline.

Run with `make bench` (or `.venv/bin/python bench/throughput.py --help`). Three processes take part:

* this one, the load generator: an aiohttp client posting pre-built event envelopes with concurrency C;
* a fake upstream (this script with `--role upstream`): an aiohttp server that reads and counts envelopes;
* the relay (this script with `--role relay`): `relay.app.create_app` on a config from `relay.config.parse_config`.

The same load is first posted directly to the fake upstream (the baseline), then through the relay, so the
relay/direct ratio from one run is meaningful even on a noisy machine. Figures go to
bench/results/throughput.json and a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "throughput.json"

LOCAL_KEY = "0123456789abcdef0123456789abcdef"
LOCAL_PROJECT = 42
UPSTREAM_KEY = "fedcba9876543210fedcba9876543210"
UPSTREAM_PROJECT = 4501
SDK = {"name": "sentry.python", "version": "2.19.0"}


# -- realistic event envelopes, built without relay code ------------------------------------------


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _frame(rng: random.Random, depth: int) -> dict[str, Any]:
    module = rng.choice(["app.views.checkout", "app.services.billing", "app.models.order", "django.core.handlers"])
    function = rng.choice(["handle", "charge_customer", "get_queryset", "dispatch", "_process", "save"])
    return {
        "filename": module.replace(".", "/") + ".py",
        "abs_path": "/srv/app/" + module.replace(".", "/") + ".py",
        "module": module,
        "function": function,
        "lineno": rng.randint(10, 900),
        "in_app": module.startswith("app."),
        "pre_context": [f"    # step {depth}.{n}" for n in range(3)],
        "context_line": f"    result = {function}(request, amount={rng.randint(1, 999)})",
        "post_context": ["    if not result:", "        raise PaymentError(result)"],
        "vars": {
            "request": "<WSGIRequest: POST '/checkout/'>",
            "amount": str(rng.randint(1, 99_999)),
            "customer_email": f"user{rng.randint(1, 10**6)}@example.com",
            "card": "4111 1111 1111 1111",
        },
    }


def _breadcrumb(rng: random.Random, ts: float) -> dict[str, Any]:
    kind = rng.choice(["http", "query", "navigation", "default"])
    return {
        "timestamp": ts,
        "type": kind,
        "category": {"http": "httplib", "query": "query", "navigation": "navigation", "default": "app"}[kind],
        "level": "info",
        "message": f"SELECT * FROM orders WHERE customer_id = {rng.randint(1, 10**6)}" if kind == "query" else None,
        "data": {
            "url": f"https://api.example.com/v1/items/{rng.randint(1, 9999)}",
            "method": "GET",
            "status_code": 200,
        },
    }


def make_event(rng: random.Random, target_size: int) -> dict[str, Any]:
    """A Python-SDK-like error event whose JSON is about `target_size` bytes."""
    now = time.time()
    user_id = rng.randint(1, 10**6)
    event: dict[str, Any] = {
        "event_id": _hex(rng, 128),
        "timestamp": now,
        "platform": "python",
        "level": "error",
        "logger": "app.checkout",
        "server_name": f"web-{rng.randint(1, 40)}",
        "release": "shop@2024.11.3",
        "environment": "production",
        "transaction": "/checkout/",
        "tags": {"region": rng.choice(["eu-west-1", "us-east-1"]), "tenant": f"t{rng.randint(1, 500)}"},
        "user": {"id": str(user_id), "email": f"user{user_id}@example.com", "ip_address": "203.0.113.7"},
        "request": {
            "url": "https://shop.example.com/checkout/",
            "method": "POST",
            "query_string": f"session={_hex(rng, 64)}",
            "headers": {"User-Agent": "Mozilla/5.0", "Cookie": f"sessionid={_hex(rng, 128)}", "Accept": "*/*"},
        },
        "contexts": {
            "trace": {"trace_id": _hex(rng, 128), "span_id": _hex(rng, 64), "op": "http.server"},
            "runtime": {"name": "CPython", "version": "3.11.7"},
            "os": {"name": "Linux", "version": "6.1"},
        },
        "sdk": SDK,
        "breadcrumbs": {"values": []},
        "exception": {
            "values": [
                {
                    "type": "PaymentError",
                    "value": f"card declined for customer {user_id}",
                    "mechanism": {"type": "django", "handled": False},
                    "stacktrace": {"frames": []},
                }
            ]
        },
    }
    size = len(json.dumps(event))
    frames: list[dict[str, Any]] = event["exception"]["values"][0]["stacktrace"]["frames"]
    crumbs: list[dict[str, Any]] = event["breadcrumbs"]["values"]
    while size < target_size:
        if rng.random() < 0.6:
            part: dict[str, Any] = _frame(rng, len(frames))
            frames.append(part)
        else:
            part = _breadcrumb(rng, now - rng.random() * 60)
            crumbs.append(part)
        size += len(json.dumps(part)) + 2
    return event


def make_envelope(rng: random.Random, target_size: int) -> bytes:
    """One envelope as an SDK sends it: header line, item header line, JSON event."""
    event = make_event(rng, target_size)
    payload = json.dumps(event, separators=(",", ":")).encode()
    header = {
        "event_id": event["event_id"],
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "dsn": f"http://{LOCAL_KEY}@relay.local/{LOCAL_PROJECT}",
        "sdk": SDK,
        "trace": {"trace_id": event["contexts"]["trace"]["trace_id"], "public_key": LOCAL_KEY},
    }
    item = {"type": "event", "length": len(payload), "content_type": "application/json"}
    return b"\n".join([json.dumps(header).encode(), json.dumps(item).encode(), payload]) + b"\n"


# -- child roles: fake upstream and relay ----------------------------------------------------------


async def _serve_until_signal(app: web.Application, before_cleanup: Any = None) -> None:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    if before_cleanup is not None:
        before_cleanup()
    await runner.cleanup()


async def run_upstream() -> None:
    """A stand-in for Sentry: reads (and un-gzips) each envelope, counts it, answers 200."""
    stats = {"envelopes": 0, "bytes": 0, "upstream_key": 0, "bad_envelope": 0}

    async def envelope(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        stats["envelopes"] += 1
        stats["bytes"] += len(body)
        if f"sentry_key={UPSTREAM_KEY}" in request.headers.get("X-Sentry-Auth", ""):
            stats["upstream_key"] += 1
        try:
            json.loads(body.split(b"\n", 1)[0])
        except ValueError:
            stats["bad_envelope"] += 1
        return web.json_response({})

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_post("/api/{project}/envelope/", envelope)
    app.router.add_get("/stats", get_stats)
    await _serve_until_signal(app)


RELAY_CONFIG = """
listen: {{host: 127.0.0.1, port: 0}}
upstream:
  url: {upstream}
  concurrency: {concurrency}
projects:
  - id: {local_project}
    keys: ["{local_key}"]
    upstream_dsn: "http://{upstream_key}@{upstream_host}/{upstream_project}"
queue:
  max_envelopes: 100000
spool: {{path: "{spool}"}}
shutdown_timeout: 10s
log: {{level: warning}}
"""


async def run_relay(upstream: str, concurrency: int) -> None:
    """The relay under test, assembled as `relay run` does but on an ephemeral port."""
    sys.path.insert(0, str(ROOT))
    from relay.app import create_app
    from relay.config import parse_config
    from relay.ingest import STATE
    from relay.logs import configure_logging

    spool_dir = tempfile.mkdtemp(prefix="relay-bench-spool-")
    text = RELAY_CONFIG.format(
        spool=spool_dir,
        upstream=upstream,
        concurrency=concurrency,
        local_project=LOCAL_PROJECT,
        local_key=LOCAL_KEY,
        upstream_key=UPSTREAM_KEY,
        upstream_host=upstream.split("://", 1)[1],
        upstream_project=UPSTREAM_PROJECT,
    )
    config = parse_config(text, "bench-relay.yml", {})
    configure_logging(config.log.level, config.log.format)
    app = create_app(config)
    state = app[STATE]

    def begin_drain() -> None:
        state.ready = False
        state.shutdown_deadline = state.clock.monotonic() + config.shutdown_timeout

    await _serve_until_signal(app, begin_drain)


# -- load generator ---------------------------------------------------------------------------------


def _peak_rss_kib(pid: int) -> dict[str, int | None]:
    """VmHWM (peak) and VmRSS (now) of a process in KiB, from /proc (Linux); None elsewhere."""
    found: dict[str, int | None] = {"peak_rss_kib": None, "rss_kib": None}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found["peak_rss_kib" if name == "VmHWM" else "rss_kib"] = int(value.split()[0])
    return found


class Child:
    """This script in another process, in one role; it prints `port N` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            self.proc.kill()
            raise SystemExit(f"child {args} did not start (said {line!r}, exit code {self.proc.wait()})")
        self.url = f"http://127.0.0.1:{line[1]}"

    def stop(self) -> int:
        """SIGTERM, wait for the drain, and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def drive(session: ClientSession, url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Post every body to `url` from `concurrency` workers; accepted rate and latency percentiles."""
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={LOCAL_KEY}, sentry_client=sentry.python/2.19.0",
    }
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    cursor = iter(range(len(bodies)))

    async def worker() -> None:
        for index in cursor:
            started = time.perf_counter()
            try:
                async with session.post(url, data=bodies[index], headers=headers) as response:
                    await response.read()
                    status = str(response.status)
            except Exception as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    accepted = statuses.get("200", 0)
    return {
        "requests": len(bodies),
        "accepted": accepted,
        "statuses": statuses,
        "seconds": round(elapsed, 3),
        "accepted_per_second": round(accepted / elapsed, 1),
        "latency_ms": {
            name: round(_percentile(latencies, q) * 1000, 2) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        }
        | {"max": round(latencies[-1] * 1000, 2) if latencies else None},
    }


async def upstream_stats(session: ClientSession, upstream: str) -> dict[str, int]:
    async with session.get(f"{upstream}/stats") as response:
        stats: dict[str, int] = await response.json()
        return stats


async def wait_for_delivery(
    session: ClientSession, upstream: str, target: int, timeout: float
) -> tuple[dict[str, int], float]:
    """Poll the upstream until it has `target` envelopes in total (or timeout); stats and when it got there."""
    deadline = time.perf_counter() + timeout
    while True:
        stats = await upstream_stats(session, upstream)
        now = time.perf_counter()
        if stats["envelopes"] >= target or now > deadline:
            return stats, now
        await asyncio.sleep(0.01)


async def relay_outcomes(session: ClientSession, relay: str) -> dict[str, float]:
    """relay_outcomes_total summed by outcome/reason, scraped from /metrics."""
    totals: dict[str, float] = {}
    async with session.get(f"{relay}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("relay_outcomes_total{"):
            labels, _, value = line.rpartition(" ")
            fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            key = f"{fields['outcome']}/{fields['reason']}"
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    generated = time.perf_counter()
    bodies = [
        make_envelope(rng, rng.randint(args.min_size, args.max_size)) for _ in range(args.envelopes + args.warmup)
    ]
    warmup, load = bodies[: args.warmup], bodies[args.warmup :]
    sizes = sorted(len(b) for b in load)
    print(
        f"built {len(bodies)} envelopes in {time.perf_counter() - generated:.1f}s "
        f"(median {sizes[len(sizes) // 2]} bytes); starting upstream and relay",
        file=sys.stderr,
    )

    upstream = Child("--role", "upstream")
    relay = None
    rounds: list[dict[str, Any]] = []
    try:
        relay = Child("--role", "relay", "--upstream", upstream.url, "--relay-concurrency", str(args.relay_concurrency))
        idle_rss = _peak_rss_kib(relay.proc.pid)["rss_kib"]
        connector = TCPConnector(limit=args.concurrency)
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=60)) as session:
            direct_url = f"{upstream.url}/api/{UPSTREAM_PROJECT}/envelope/"
            relay_url = f"{relay.url}/api/{LOCAL_PROJECT}/envelope/"
            await drive(session, direct_url, warmup, args.concurrency)
            base = (await upstream_stats(session, upstream.url))["envelopes"]
            warm = await drive(session, relay_url, warmup, args.concurrency)
            await wait_for_delivery(session, upstream.url, base + warm["accepted"], 30)
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds}: direct, then relay", file=sys.stderr)
                direct = await measure_direct(session, upstream.url, direct_url, load, args.concurrency)
                through = await measure_relay(session, upstream.url, relay_url, load, args)
                rounds.append({"round": number, "direct": direct, "relay": through, "ratio": _ratios(direct, through)})
            outcomes = await relay_outcomes(session, relay.url)
            peak_rss = _peak_rss_kib(relay.proc.pid)["peak_rss_kib"]
    finally:
        relay_exit = relay.stop() if relay is not None else None
        upstream.stop()

    # The round with the median relay/direct throughput ratio stands for the run; all rounds are kept.
    ranked = sorted(rounds, key=lambda r: r["ratio"]["accepted_per_second"] or 0.0)
    median = ranked[len(ranked) // 2]
    ratios = [r["ratio"]["accepted_per_second"] for r in ranked]
    return {
        "benchmark": "throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _git_commit(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "load": {
            "envelopes": len(load),
            "warmup": len(warmup),
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "relay_upstream_concurrency": args.relay_concurrency,
            "envelope_bytes": {"min": sizes[0], "p50": sizes[len(sizes) // 2], "max": sizes[-1]},
            "seed": args.seed,
        },
        "median_round": median["round"],
        "direct": median["direct"],
        "relay": median["relay"],
        "ratio_relay_to_direct": median["ratio"] | {"accepted_per_second_all_rounds": ratios},
        "relay_process": {
            "idle_rss_mib": round(idle_rss / 1024, 1) if idle_rss else None,
            "peak_rss_mib": round(peak_rss / 1024, 1) if peak_rss else None,
            "outcomes": outcomes,
            "exit_code": relay_exit,
        },
        "rounds": rounds,
    }


async def measure_direct(
    session: ClientSession, upstream: str, url: str, load: list[bytes], concurrency: int
) -> dict[str, Any]:
    """The baseline: the load straight to the fake upstream."""
    before = (await upstream_stats(session, upstream))["envelopes"]
    result = await drive(session, url, load, concurrency)
    result["delivered"] = (await upstream_stats(session, upstream))["envelopes"] - before
    return result


async def measure_relay(
    session: ClientSession, upstream: str, url: str, load: list[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    """The load through the relay, then the wait until the upstream has every accepted envelope."""
    before = await upstream_stats(session, upstream)
    started = time.perf_counter()
    result = await drive(session, url, load, args.concurrency)
    target = before["envelopes"] + result["accepted"]
    after, delivered_at = await wait_for_delivery(session, upstream, target, args.delivery_timeout)
    delivered = after["envelopes"] - before["envelopes"]
    result["delivered"] = delivered
    result["delivered_with_upstream_key"] = after["upstream_key"] - before["upstream_key"]
    result["end_to_end_seconds"] = round(delivered_at - started, 3)
    result["delivered_per_second"] = round(delivered / (delivered_at - started), 1)
    return result


def _ratios(direct: dict[str, Any], through: dict[str, Any]) -> dict[str, float | None]:
    return {
        "accepted_per_second": _ratio(through["accepted_per_second"], direct["accepted_per_second"]),
        "latency_p50": _ratio(through["latency_ms"]["p50"], direct["latency_ms"]["p50"]),
        "latency_p99": _ratio(through["latency_ms"]["p99"], direct["latency_ms"]["p99"]),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def print_table(result: dict[str, Any]) -> None:
    direct, through, ratio = result["direct"], result["relay"], result["ratio_relay_to_direct"]
    load = result["load"]
    sizes = load["envelope_bytes"]
    print(
        f"\n{load['envelopes']} event envelopes ({sizes['min']}-{sizes['max']} bytes), "
        f"client concurrency {load['concurrency']}, {result['machine']['cpus']} CPUs"
    )
    process = result["relay_process"]
    rows = [
        ("", "direct", "relay", "relay/direct"),
        ("accepted req/s", direct["accepted_per_second"], through["accepted_per_second"], ratio["accepted_per_second"]),
        ("latency p50 ms", direct["latency_ms"]["p50"], through["latency_ms"]["p50"], ratio["latency_p50"]),
        ("latency p90 ms", direct["latency_ms"]["p90"], through["latency_ms"]["p90"], ""),
        ("latency p99 ms", direct["latency_ms"]["p99"], through["latency_ms"]["p99"], ratio["latency_p99"]),
        ("accepted", direct["accepted"], through["accepted"], ""),
        ("delivered upstream", direct["delivered"], through["delivered"], ""),
        ("delivered/s", direct["accepted_per_second"], through["delivered_per_second"], ""),
        ("load / e2e seconds", direct["seconds"], f"{through['seconds']}/{through['end_to_end_seconds']}", ""),
        ("relay peak RSS MiB", "", process["peak_rss_mib"], ""),
    ]
    print(f"median of {load['rounds']} interleaved rounds (round {result['median_round']}):")
    for row in rows:
        print(f"{row[0]:<20}{row[1]!s:>12}{row[2]!s:>14}{row[3]!s:>14}")
    print(f"relay/direct req/s in every round: {ratio['accepted_per_second_all_rounds']}")
    print(f"relay outcomes (warmup included): {process['outcomes']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envelopes", "-n", type=int, default=5000, help="measured envelopes per target")
    parser.add_argument("--concurrency", "-c", type=int, default=50, help="client requests in flight")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured envelopes sent first to each target")
    parser.add_argument("--min-size", type=int, default=2000, help="smallest event payload, bytes")
    parser.add_argument("--max-size", type=int, default=5000, help="largest event payload, bytes")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved direct/relay rounds; the median is shown")
    parser.add_argument("--relay-concurrency", type=int, default=16, help="the relay's upstream.concurrency")
    parser.add_argument("--delivery-timeout", type=float, default=30.0, help="seconds to wait for the relay to deliver")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--role", choices=("bench", "upstream", "relay"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "upstream":
        asyncio.run(run_upstream())
        return 0
    if args.role == "relay":
        asyncio.run(run_relay(args.upstream, args.relay_concurrency))
        return 0

    result = asyncio.run(bench(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    expected = result["load"]["envelopes"]
    complete = all(r["relay"]["delivered"] == r["relay"]["accepted"] == expected for r in result["rounds"])
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
