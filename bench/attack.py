"""The attack mix of issue 15, against `relay run` as deployed, while ordinary traffic flows.

    python bench/attack.py [--seconds 30] [--max-rss-mb 320]

The relay runs as a process (SQLite spool with fsync, default limits and scrubbing, the fake upstream of
chaos.py). For `--seconds`, at once:

- ordinary traffic: 4 clients posting small events;
- decompression bombs: 4 clients posting ~100 KB gzip bodies that expand to 99 MiB each;
- an item flood: one client posting 18 KB gzip bodies of 400,000 tiny items;
- hostile strings: one client posting 1 MB events of 20,000 e-mail addresses;
- slowloris: 200 connections sending a header byte now and then.

Sampled every 0.1 s: the RSS of the relay and its children together (its memory limit counts both), and the
latency of `/healthz`. Reported: peak RSS (against `--max-rss-mb`, the smaller of the shipped Kubernetes limits),
the worst `/healthz` latency (target 250 ms), ordinary events acknowledged and delivered, the attackers' status
codes, and the log lines at ERROR. Figures go to bench/results/attack.json; exit code 1 if a bound is broken or an
acknowledged event is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from chaos import AUTH, LOCAL_PROJECT, FakeUpstream, Load, RelayRunner, client_loop, free_port, relay_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "attack.json"


def bomb(size: int) -> bytes:
    """~100 KB of gzip that expands to an envelope of `size` bytes (one attachment of zeros)."""
    head = b'{}\n{"type":"attachment","length":%d}\n' % (size - 64)
    stream = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts, left, chunk = [stream.compress(head)], size - 64, b"\0" * 2**20
    while left > 0:
        parts.append(stream.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    return b"".join([*parts, stream.flush()])


def tree_rss(pid: int, children: bool = True) -> int:
    """VmRSS of a process and (unless not `children`) its descendants, bytes."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pending += [int(c) for c in kids] if children else []
    return total


async def loop_lag(session: ClientSession, base: str) -> float:
    """The relay's worst event-loop lag since the last scrape (relay_event_loop_lag_max_seconds), 0 if unread."""
    try:
        async with session.get(f"{base}/metrics", timeout=ClientTimeout(total=5)) as resp:
            text = await resp.text()
    except (TimeoutError, ClientError, OSError):
        return 0.0
    for line in text.splitlines():
        if line.startswith("relay_event_loop_lag_max_seconds "):
            return float(line.split()[1])
    return 0.0


async def attacker(session: ClientSession, url: str, body: bytes, headers: dict[str, str], until: float,
                   statuses: Counter[str]) -> None:  # fmt: skip
    while time.monotonic() < until:
        try:
            async with session.post(url, data=body, headers=headers, timeout=ClientTimeout(total=30)) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1
                if resp.status == 503:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")) / 4)
        except (TimeoutError, ClientError, OSError) as exc:
            statuses[type(exc).__name__] += 1
            await asyncio.sleep(0.1)


async def slowloris(port: int, until: float, count: int, statuses: Counter[str]) -> None:
    """`count` connections that send a header line byte by byte, reopened when the relay closes them."""

    async def one() -> None:
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                statuses["refused"] += 1
                await asyncio.sleep(0.5)
                continue
            writer.write(b"POST /api/42/envelope/ HTTP/1.1\r\nHost: relay\r\n")
            try:
                while time.monotonic() < until:
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(1.0)
                    if reader.at_eof():
                        break
            except OSError:
                pass
            statuses["closed by relay"] += 1
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="relay-attack-"))
    upstream = FakeUpstream(free_port())
    await upstream.start()
    port = free_port()
    config = workdir / "relay.yml"
    config.write_text(
        relay_config(port, upstream.url, workdir / "spool", retry_max="5s", probe_max="5s") + args.extra + "\n"
    )
    relay = RelayRunner(config, port, workdir)
    statuses: dict[str, Counter[str]] = {name: Counter() for name in ("bombs", "items", "strings", "slowloris")}
    load = Load()
    rss_peak, parent_peak, health_worst, health_failures, lag_worst = 0, 0, 0.0, 0, 0.0
    url = f"{relay.url}/api/{LOCAL_PROJECT}/envelope/"
    async with ClientSession(connector=TCPConnector(limit=64)) as session:
        await relay.start()
        await relay.wait_ready(session)
        assert relay.proc is not None
        baseline = tree_rss(relay.proc.pid)
        until = time.monotonic() + args.seconds
        gz = {**AUTH, "Content-Encoding": "gzip"}
        flood = gzip.compress(b"{}\n" + b'{"type":"client_report"}\n{}\n' * 400_000)
        emails = " ".join(f"user{i}@example.com" for i in range(20_000)).encode()
        strings = b'{}\n{"type":"event"}\n{"message":"' + emails + b'"}\n'
        only = set(args.only.split(",")) if args.only else {"bombs", "items", "strings", "slowloris"}
        tasks = [asyncio.create_task(client_loop(n, 7, relay, session, until, load)) for n in range(4)]
        if "bombs" in only:
            body = bomb(99 * 2**20)
            tasks += [asyncio.create_task(attacker(session, url, body, gz, until, statuses["bombs"])) for _ in range(4)]
        if "items" in only:
            tasks.append(asyncio.create_task(attacker(session, url, flood, gz, until, statuses["items"])))
        if "strings" in only:
            tasks.append(asyncio.create_task(attacker(session, url, strings, AUTH, until, statuses["strings"])))
        if "slowloris" in only:
            tasks.append(asyncio.create_task(slowloris(port, until, 200, statuses["slowloris"])))
        while time.monotonic() < until:
            rss_peak = max(rss_peak, tree_rss(relay.proc.pid))
            parent_peak = max(parent_peak, tree_rss(relay.proc.pid, children=False))
            started = time.monotonic()
            try:
                async with session.get(f"{relay.url}/healthz", timeout=ClientTimeout(total=5)) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (TimeoutError, ClientError, OSError):
                ok = False
            health_worst = max(health_worst, time.monotonic() - started)
            health_failures += not ok
            lag_worst = max(lag_worst, await loop_lag(session, relay.url))
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks, return_exceptions=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not load.acked <= set(upstream.delivered):
            await asyncio.sleep(0.5)
        await relay.terminate()
    await upstream.stop()
    log = "".join(p.read_text(errors="replace") for p in workdir.glob("relay-*.log"))
    errors = [line for line in log.splitlines() if '"level":"error"' in line]
    lost = len(load.acked - set(upstream.delivered))
    report = {
        "seconds": args.seconds,
        "extra_config": args.extra,
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(rss_peak / 2**20, 1),
        "rss_peak_relay_alone_mb": round(parent_peak / 2**20, 1),
        "rss_bound_mb": args.max_rss_mb,
        "healthz_worst_ms": round(health_worst * 1000, 1),
        "healthz_failures": health_failures,
        "event_loop_lag_worst_ms": round(lag_worst * 1000, 1),  # relay_event_loop_lag_max_seconds, per scrape
        "ordinary": {"sent": load.sent, "acked": len(load.acked), "lost": lost, "statuses": dict(load.statuses)},
        "attackers": {name: dict(counter) for name, counter in statuses.items()},
        "error_log_lines": len(errors),
        "error_messages": sorted({json.loads(line).get("msg", "") for line in errors if line.startswith("{")}),
        "workdir": str(workdir),
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-rss-mb", type=float, default=320.0)
    parser.add_argument("--only", default="", help="attacks to run, comma-separated (default: all)")
    parser.add_argument(
        "--extra", default="", help="YAML appended to the relay's config (e.g. the limits of deploy/kubernetes.yaml)"
    )
    args = parser.parse_args()
    report = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    broken = (
        report["rss_peak_mb"] > args.max_rss_mb
        or report["healthz_worst_ms"] > 250
        or report["ordinary"]["lost"] > 0
        or report["error_log_lines"] > 0
    )
    return 1 if broken else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
