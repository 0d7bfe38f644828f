"""End-to-end performance of `relay run` against a no-op ceiling, with the issue's targets checked.

    python bench/perf.py [--rounds 3] [--seconds 8] [--profile bench/results/relay-profile.txt]

One run (under three minutes) measures, on pinned cores (relay and ceiling on core 1; this load
generator and the fake upstream on core 0):

1. saturation: interleaved closed-loop rounds, ceiling then relay; events/s, latency, relay CPU per
   1,000 events, peak RSS; medians are reported;
2. fixed offered load at 50 % of the relay's own saturation rate (open loop), with and without a
   stream of ~1 MB events at 2/s, interleaved; small-event latency percentiles;
3. `relay run --workers 2` against one worker, unpinned, when the option exists;

and folds in bench/results/scrub.json (bench/scrub_bench.py runs first in `make bench`). Figures are
printed and written to bench/results/perf.json. See bench/README-perf.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_report
import workload
from loadgen import Pool, latency_summary, saturate
from processes import ROOT, USABLE_CPUS, Server, affinity_available, pin, relay_supports_workers
from rig import Rig, ceiling_round, offered_round, relay_outcomes, relay_round

RESULTS = ROOT / "bench" / "results" / "perf.json"
SCRUB_RESULTS = ROOT / "bench" / "results" / "scrub.json"
# Core 1 for the relay and the ceiling, core 0 for the load generator and the fake upstream (on a machine
# that gives this process other cores, the first two of those).
CLIENT_CPU, SERVER_CPU = ({cpu} for cpu in (USABLE_CPUS[:2] if len(USABLE_CPUS) >= 2 else [0, 0]))


# -- the run ----------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    events = workload.load_events(args.corpus, args.events)
    small = workload.small_requests(events, args.seed)
    big = workload.big_requests(events, args.seed)
    pinned = affinity_available() and not args.no_pin
    server_cpus, client_cpus = (SERVER_CPU, CLIENT_CPU) if pinned else (None, None)
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    supports_workers = relay_supports_workers()
    tmp = Path(tempfile.mkdtemp(prefix="relay-perf-", dir=args.tmpdir))
    rig = Rig(tmp)
    result: dict[str, Any] = {"loadavg_at_start": os.getloadavg(), "workload": _workload(small, big, args)}
    result["scrub"] = _scrub(args.scrub_results)  # its age as of now, before this run's own minutes
    _say(f"{len(small)} corpus events and {len(big)} big events ready; starting processes in {tmp}")
    try:
        await rig.start_upstream(client_cpus)
        ceiling = await rig.start_ceiling(server_cpus)
        relay = await rig.start_relay("relay", server_cpus)
        result["pinning"] = _pinning(pinned, rig, ceiling, relay)
        _say(f"pinning: {result['pinning']['summary']}")

        warm = Pool(ceiling.port)
        await saturate(warm, small, args.concurrency, args.warmup)
        warm.close()
        await relay_round(rig, relay, small, args.concurrency, args.warmup)
        rounds = []
        for number in range(1, args.rounds + 1):
            _say(f"saturation round {number}/{args.rounds}: ceiling, then relay ({args.seconds:g}s each)")
            ceiling_run = await ceiling_round(rig, ceiling, small, args.concurrency, args.seconds)
            relay_run = await relay_round(rig, relay, small, args.concurrency, args.seconds)
            rounds.append({"round": number, "ceiling": ceiling_run, "relay": relay_run})
        result["saturation"] = _saturation(rounds)
        result["saturation"]["relay_peak_rss_kib"] = relay.peak_rss_kib()
        result["saturation"]["ceiling_peak_rss_kib"] = ceiling.peak_rss_kib()
        rig.stop(ceiling)

        rate = args.load_fraction * result["saturation"]["relay_events_per_second"]
        offered = []
        for number in range(1, args.latency_rounds + 1):
            for with_big in (False, True):
                what = "with" if with_big else "without"
                _say(f"fixed load round {number}/{args.latency_rounds}: {rate:.0f} events/s {what} 1 MB events")
                stream = (big, args.big_rate) if with_big else (None, 0.0)
                offered.append(
                    await offered_round(rig, relay, small, rate, args.latency_seconds, args.connections, *stream)
                )
        result["fixed_load"] = _fixed_load(offered, rate, args)
        result["relay_process"] = {
            "peak_rss_kib_after_big_events": relay.peak_rss_kib(),
            "outcomes": await relay_outcomes(relay),
        }
        if args.profile:
            result["profile"] = await _profile(rig, relay, small, args)
        result["relay_process"]["exit_code"] = rig.stop(relay)

        result["workers"] = await _workers(rig, small, args, supports_workers)
    finally:
        rig.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - began, 1)
    return result


async def _workers(rig: Rig, small: list[bytes], args: argparse.Namespace, supported: bool) -> dict[str, Any]:
    """Saturation of `--workers 2` vs `--workers 1`, everything unpinned (the load generator shares the cores)."""
    if not supported:
        _say("workers: not available (relay run has no --workers option)")
        return {"available": False, "why": "not available"}
    if args.worker_rounds < 1:
        return {"available": False, "why": "skipped (--worker-rounds 0)"}
    assert rig.upstream is not None
    if affinity_available():
        os.sched_setaffinity(0, set(USABLE_CPUS))
        pin(rig.upstream.pid, None)
    one = await rig.start_relay("relay-w1", None, workers=1)
    two = await rig.start_relay("relay-w2", None, workers=2)
    concurrency = args.concurrency * 2
    await relay_round(rig, one, small, concurrency, args.warmup)
    await relay_round(rig, two, small, concurrency, args.warmup)
    rounds: list[dict[str, Any]] = []
    for number in range(1, args.worker_rounds + 1):
        _say(f"workers round {number}/{args.worker_rounds}: --workers 1, then --workers 2 (unpinned)")
        rounds.append(
            {
                "round": number,
                "workers_1": await relay_round(rig, one, small, concurrency, args.seconds),
                "workers_2": await relay_round(rig, two, small, concurrency, args.seconds),
            }
        )
    rss = {"workers_1": one.peak_rss_kib(), "workers_2": two.peak_rss_kib()}
    rig.stop(one)
    rig.stop(two)
    w1 = statistics.median(r["workers_1"]["end_to_end_per_second"] for r in rounds)
    w2 = statistics.median(r["workers_2"]["end_to_end_per_second"] for r in rounds)
    return {
        "available": True,
        "pinning": "none: relay, load generator and fake upstream share every core",
        "concurrency": concurrency,
        "workers_1_events_per_second": w1,
        "workers_2_events_per_second": w2,
        "ratio": round(w2 / w1, 3) if w1 else None,
        "other_cores": max(r[k]["other_cores"] for r in rounds for k in ("workers_1", "workers_2")),
        "peak_rss_kib": rss,
        "rounds": rounds,
    }


async def _profile(rig: Rig, relay: Server, small: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """One more saturation round with py-spy sampling the relay; collapsed stacks go to --profile."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        _say("profile: py-spy not found (pip install py-spy into the venv)")
        return {"error": "py-spy not found"}
    _say(f"profile: one more relay round under py-spy -> {args.profile}")
    seconds = str(int(args.seconds))
    command = [py_spy, "record", "--pid", str(relay.pid), "--duration", seconds, "--rate", "250"]
    command += ["--format", "raw", "--output", str(args.profile), "--subprocesses", "--gil"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await asyncio.sleep(0.5)
    measured = await relay_round(rig, relay, small, args.concurrency, args.seconds)
    _, err = await asyncio.to_thread(spy.communicate)
    return {"output": str(args.profile), "exit_code": spy.returncode, "stderr": err.decode()[-500:], "round": measured}


# -- summaries --------------------------------------------------------------------------------------------------


def _median(rounds: list[dict[str, Any]], side: str, *keys: str) -> float:
    values: list[float] = []
    for r in rounds:
        value: Any = r[side]
        for key in keys:
            value = value[key]
        values.append(float(value))
    return round(statistics.median(values), 2)


def _saturation(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    relay_eps = _median(rounds, "relay", "end_to_end_per_second")
    ceiling_eps = _median(rounds, "ceiling", "events_per_second")
    return {
        "relay_events_per_second": relay_eps,
        "relay_accepted_per_second": _median(rounds, "relay", "events_per_second"),
        "ceiling_events_per_second": ceiling_eps,
        "ratio": round(relay_eps / ceiling_eps, 3) if ceiling_eps else None,
        "ratio_per_round": [
            round(r["relay"]["end_to_end_per_second"] / r["ceiling"]["events_per_second"], 3) for r in rounds
        ],
        "relay_latency_ms": {q: _median(rounds, "relay", "latency_ms", q) for q in ("p50", "p95", "p99")},
        "ceiling_latency_ms": {q: _median(rounds, "ceiling", "latency_ms", q) for q in ("p50", "p95", "p99")},
        "relay_cpu_ms_per_1000_events": _median(rounds, "relay", "cpu_ms_per_1000_events"),
        "ceiling_cpu_ms_per_1000_events": _median(rounds, "ceiling", "cpu_ms_per_1000_events"),
        # The same comparison in CPU time per event: what the throughput ratio would be with a whole
        # core each, and less sensitive to other processes taking wall-clock time from a round.
        "cpu_ratio": round(
            _median(rounds, "ceiling", "cpu_ms_per_1000_events") / _median(rounds, "relay", "cpu_ms_per_1000_events"),
            3,
        ),
        "relay_drain_seconds": _median(rounds, "relay", "drain_seconds"),
        "relay_system_cpu_share": _median(rounds, "relay", "server_system_cpu_share"),
        "other_cores": max(r[side]["other_cores"] for r in rounds for side in ("ceiling", "relay")),
        "rounds": rounds,
    }


def _fixed_load(offered: list[dict[str, Any]], rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Per kind: the median of the rounds' p99s (what the targets use: one disturbed round can't decide it),
    and every sample pooled (more of a tail than any one round has)."""
    pooled: dict[str, Any] = {}
    for with_big, name in ((False, "without_big"), (True, "with_big")):
        chosen = [r for r in offered if r["with_big"] is with_big]
        samples = [x for r in chosen for x in r.pop("small_latencies")]
        pooled[name] = {
            "small_latency_ms": latency_summary(samples),
            "small_p99_ms": round(statistics.median(r["small"]["latency_ms"]["p99"] for r in chosen), 2),
            "small_p99_per_round_ms": [r["small"]["latency_ms"]["p99"] for r in chosen],
            "relay_cpu_utilization": statistics.median(r["server_cpu_utilization"] for r in chosen),
            "relay_cpu_ms_per_1000_events": statistics.median(r["cpu_ms_per_1000_events"] for r in chosen),
            "relay_system_cpu_share": statistics.median(r["server_system_cpu_share"] for r in chosen),
            "other_cores": max(r["other_cores"] for r in chosen),
        }
    without, with_ = pooled["without_big"]["small_p99_ms"], pooled["with_big"]["small_p99_ms"]
    return {
        "offered_per_second": round(rate, 1),
        "fraction_of_saturation": args.load_fraction,
        "seconds_per_round": args.latency_seconds,
        "connections": args.connections,
        "big_events_per_second": args.big_rate,
        **pooled,
        "p99_ratio_with_big": round(with_ / without, 2) if without else None,
        "rounds": offered,
    }


def _scrub(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return {"available": False, "error": f"{path}: {exc}"}
    engines = data.get("engines", {})
    return {
        "available": data.get("relay_median_over_anchor_default_median") is not None,
        "ratio": data.get("relay_median_over_anchor_default_median"),
        "relay_median_us": engines.get("relay", {}).get("median_us"),
        "anchor_default_median_us": engines.get("anchor-default", {}).get("median_us"),
        "age_seconds": round(time.time() - path.stat().st_mtime),
        "path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
    }


def _pinning(pinned: bool, rig: Rig, ceiling: Server, relay: Server) -> dict[str, Any]:
    assert rig.upstream is not None
    if not pinned:
        why = "disabled by --no-pin" if hasattr(os, "sched_setaffinity") else "sched_setaffinity unavailable"
        if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) < 2:
            why = "fewer than 2 cores available"
        return {"pinned": False, "summary": f"none ({why}); every process shares every core"}
    return {
        "pinned": True,
        "relay": relay.pinning,
        "ceiling": ceiling.pinning,
        "fake_upstream": rig.upstream.pinning,
        "load_generator": f"sched_setaffinity {sorted(CLIENT_CPU)}",
        "summary": f"relay and ceiling on core {min(SERVER_CPU)} ({relay.pinning}); "
        f"load generator and fake upstream on core {min(CLIENT_CPU)}",
    }


def _workload(small: list[bytes], big: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    sizes = sorted(len(r) for r in small)
    return {
        "corpus": str(args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus),
        "events": len(small),
        "request_bytes": {"min": sizes[0], "p50": sizes[len(sizes) // 2], "max": sizes[-1]},
        "big_request_bytes": [len(r) for r in big],
        "concurrency": args.concurrency,
        "round_seconds": args.seconds,
        "rounds": args.rounds,
        "relay_config": "rules [secrets, pii], spool sqlite with fsync, log json/info, everything else default",
    }


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ceiling/relay saturation rounds")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one saturation round")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds on each server first")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--connections", type=int, default=64, help="open-loop connections (small events)")
    parser.add_argument("--load-fraction", type=float, default=0.5, help="fixed load as a share of saturation")
    parser.add_argument("--latency-rounds", type=int, default=3, help="fixed-load rounds of each kind")
    parser.add_argument("--latency-seconds", type=float, default=6.0, help="length of one fixed-load round")
    parser.add_argument("--big-rate", type=float, default=2.0, help="~1 MB events per second in the big stream")
    parser.add_argument("--worker-rounds", type=int, default=2, help="interleaved --workers 1/2 rounds")
    parser.add_argument("--events", type=int, default=1000, help="corpus events to cycle through")
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "data" / "corpus.jsonl")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scrub-results", type=Path, default=SCRUB_RESULTS, help="scrub_bench.py's JSON")
    parser.add_argument("--profile", type=Path, help="also sample the relay with py-spy; collapsed stacks here")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--tmpdir", help="where the relay's config and spool go (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    result = asyncio.run(run(args))
    full = perf_report.describe(result, ROOT) | result
    full["targets"] = perf_report.targets(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(full, option=orjson.OPT_INDENT_2) + b"\n")
    perf_report.show(full)
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    lost = _lost(result)
    if lost:
        print(f"ERROR: {lost}", file=sys.stderr)
        return 1
    return 1 if args.strict and any(t["status"] == "FAIL" for t in full["targets"]) else 0


def _lost(result: dict[str, Any]) -> str:
    """Accepted envelopes that never reached the upstream, beyond what the relay says it dropped, were lost."""
    rounds = [r["relay"] for r in result["saturation"]["rounds"]] + result["fixed_load"]["rounds"]
    missing = sum(max(0, (r["accepted"] if "accepted" in r else r["ok"]) - r["delivered"]) for r in rounds)
    outcomes = result["relay_process"]["outcomes"]
    dropped = sum(n for key, n in outcomes.items() if not key.startswith(("forwarded/", "accepted/")))
    if missing > dropped:
        return f"{missing} accepted envelopes never reached the upstream; the relay accounts for {dropped:g} drops"
    return ""


if __name__ == "__main__":
    sys.exit(main())
