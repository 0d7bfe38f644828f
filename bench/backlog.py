"""Backlog run for the durable spool: fill it while the upstream is down, watch memory, then time the drain.

Run with `make backlog` (or `.venv/bin/python bench/backlog.py --help`). The relay runs as a process
(`python -m relay run`, SQLite spool with fsync in a temp dir, default scrubbing); this process hosts
the fake upstream (see chaos.py) and the load generator.

1. With the upstream down (its port closed), `--events` small events (~1 KB) are posted as fast as
   `--concurrency` keep-alive clients can; the relay's RSS (VmRSS) is sampled every 0.5 s throughout.
2. The upstream comes up; the drain is timed until `relay_spool_entries` (scraped from /metrics) is 0.

Reported: accepted count and ingest rate, peak RSS (must stay under `--max-rss-mb`, default 200),
time from upstream-up to the first delivery and to an empty spool, and the drain rate. Figures go to
bench/results/backlog.json; the exit code is 1 when the peak RSS bound is broken or events are lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from chaos import (
    AUTH,
    LOCAL_PROJECT,
    FakeUpstream,
    RelayRunner,
    event_envelope,
    free_port,
    proc_status,
    relay_config,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "backlog.json"


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds."""

    def __init__(self, relay: RelayRunner, interval: float = 0.5) -> None:
        self.relay = relay
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._started = time.monotonic()

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            proc = self.relay.proc
            if proc is not None and proc.returncode is None:
                self.samples.append((time.monotonic() - self._started, proc_status(proc.pid, "VmRSS")))
            await asyncio.sleep(self.interval)

    @property
    def peak(self) -> int:
        """Highest sample, bytes."""
        return max((rss for _, rss in self.samples), default=0)


async def fill(relay: RelayRunner, session: ClientSession, events: int, concurrency: int, seed: int) -> dict[str, Any]:
    """Post `events` distinct envelopes with `concurrency` workers; return counts and the ingest rate."""
    rng = random.Random(seed)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(events)]
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    next_index = 0
    body_bytes = 0

    async def worker(n: int) -> None:
        nonlocal next_index, body_bytes
        local = random.Random(seed * 1000 + n)
        while next_index < events:
            event_id = ids[next_index]
            next_index += 1
            body = event_envelope(event_id, local, pad=300)
            body_bytes += len(body)
            try:
                async with session.post(
                    f"{relay.url}/api/{LOCAL_PROJECT}/envelope/", data=body, headers=AUTH, timeout=ClientTimeout(30)
                ) as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
                    if resp.status == 200:
                        accepted.append(event_id)
            except (ClientError, OSError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1

    started = time.monotonic()
    progress = asyncio.create_task(report_progress(lambda: next_index, events, started))
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    progress.cancel()
    seconds = time.monotonic() - started
    return {
        "accepted_ids": accepted,
        "statuses": dict(statuses),
        "fill_seconds": round(seconds, 2),
        "ingest_rate_per_s": round(len(accepted) / seconds, 1),
        "mean_envelope_bytes": round(body_bytes / max(1, events)),
    }


async def report_progress(done: Any, total: int, started: float) -> None:
    """Print progress every 10 s."""
    while True:
        await asyncio.sleep(10)
        count = done()
        print(f"  {count}/{total} posted, {count / (time.monotonic() - started):.0f}/s", flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole backlog run; returns the report."""
    workdir = Path(tempfile.mkdtemp(prefix="relay-backlog-"))
    upstream = FakeUpstream(free_port())  # not started: the upstream is down
    port = free_port()
    config = workdir / "relay.yml"
    config.write_text(relay_config(port, upstream.url, workdir / "spool", retry_max="5s", probe_max=args.probe_max))
    relay = RelayRunner(config, port, workdir)
    sampler = RssSampler(relay)
    connector = TCPConnector(limit=args.concurrency * 2)
    async with ClientSession(connector=connector) as session:
        await relay.start()
        await relay.wait_ready(session)
        sampling = asyncio.create_task(sampler.run())
        print(f"backlog: {args.events} events, concurrency {args.concurrency}, work dir {workdir}", flush=True)
        filled = await fill(relay, session, args.events, args.concurrency, args.seed)
        accepted = filled.pop("accepted_ids")
        entries = await relay.metric(session, "relay_spool_entries")
        spool_bytes = await relay.metric(session, "relay_spool_bytes")
        db_bytes = sum(p.stat().st_size for p in (workdir / "spool").glob("spool.db*"))
        rss_after_fill = proc_status(relay.proc.pid, "VmRSS") if relay.proc else 0
        print(
            f"filled in {filled['fill_seconds']}s ({filled['ingest_rate_per_s']}/s): spool holds {entries} entries, "
            f"RSS {rss_after_fill / 2**20:.0f} MB; upstream up",
            flush=True,
        )

        await upstream.start()
        up_at = time.monotonic()
        first_delivery: float | None = None
        left = entries
        samples: list[tuple[float, float]] = []
        while time.monotonic() - up_at < args.drain_timeout:
            if first_delivery is None and upstream.delivered:
                first_delivery = time.monotonic() - up_at
            left = await relay.metric(session, "relay_spool_entries")
            if left is not None:
                samples.append((round(time.monotonic() - up_at, 2), left))
            if left == 0:
                break
            await asyncio.sleep(0.5)
        drain_seconds = time.monotonic() - up_at
        sampling.cancel()
        code = await relay.terminate()

    missing = len(set(accepted) - upstream.delivered.keys())
    from_first = drain_seconds - (first_delivery or 0.0)
    peak = max(sampler.peak, *relay.peaks)
    report = {
        "events": args.events,
        "concurrency": args.concurrency,
        **filled,
        "accepted": len(accepted),
        "spool_entries_after_fill": entries,
        "spool_bytes_after_fill": spool_bytes,
        "db_file_bytes_after_fill": db_bytes,
        "rss_after_fill_mb": round(rss_after_fill / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "peak_rss_sampled_mb": round(sampler.peak / 2**20, 1),
        "max_rss_mb": args.max_rss_mb,
        "seconds_to_first_delivery": None if first_delivery is None else round(first_delivery, 2),
        "drain_seconds": round(drain_seconds, 2),
        "drained": left == 0,
        "drain_rate_per_s": round(len(accepted) / drain_seconds, 1) if left == 0 else None,
        "drain_rate_from_first_delivery_per_s": round(len(accepted) / from_first, 1) if left == 0 else None,
        "delivered_distinct": len(upstream.delivered),
        "duplicates_delivered": sum(c - 1 for c in upstream.delivered.values() if c > 1),
        "accepted_not_delivered": missing,
        "drain_curve": samples[:: max(1, len(samples) // 40)],
        "rss_curve_mb": [
            (round(t, 1), round(r / 2**20, 1)) for t, r in sampler.samples[:: max(1, len(sampler.samples) // 60)]
        ],
        "final_exit_code": code,
        "config": {"fsync": True, "rules": "default", "probe_max": args.probe_max},
        "work_dir": str(workdir),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    return report


def main() -> int:
    """Parse arguments, run, print and save the report; exit 1 on too much memory or a lost event."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-rss-mb", type=float, default=200.0)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    parser.add_argument("--probe-max", default="1s", help="the relay's upstream.outage.probe_max")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    keys = (
        "accepted",
        "fill_seconds",
        "ingest_rate_per_s",
        "mean_envelope_bytes",
        "peak_rss_mb",
        "seconds_to_first_delivery",
        "drain_seconds",
        "drain_rate_per_s",
        "duplicates_delivered",
        "accepted_not_delivered",
    )
    width = max(map(len, keys))
    for key in keys:
        print(f"{key:<{width}}  {report[key]}")
    print(f"written to {args.output}")
    failed = False
    if report["peak_rss_mb"] >= args.max_rss_mb:
        print(f"FAIL: peak RSS {report['peak_rss_mb']} MB is over {args.max_rss_mb} MB")
        failed = True
    if report["accepted_not_delivered"] or not report["drained"]:
        print(f"FAIL: {report['accepted_not_delivered']} accepted events not delivered")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
