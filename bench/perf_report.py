"""bench/perf.py's figures as targets (PASS/FAIL) and as printed tables, plus where they were measured."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

MB = 1_000_000
NOISY_CORES = 0.5  # other processes' load during a target's rounds above which its verdict is flagged


def describe(result: dict[str, Any], root: Path) -> dict[str, Any]:
    """When, which commit (and whether the tree was dirty), and on what machine."""
    return {
        "benchmark": "perf",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(root),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "aiohttp": _version("aiohttp"),
            "orjson": _version("orjson"),
        },
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and PASS, FAIL or N/A."""
    sat, fixed, scrub, workers = result["saturation"], result["fixed_load"], result["scrub"], result["workers"]
    rss_mb = sat["relay_peak_rss_kib"]["max"] * 1024 / MB
    without = fixed["without_big"]["small_p99_ms"]
    with_big = fixed["with_big"]["small_p99_ms"]
    latency_noise = fixed["without_big"]["other_cores"]
    big_noise = max(latency_noise, fixed["with_big"]["other_cores"])
    return [
        _target(
            "throughput",
            "relay events/s >= 50% of the ceiling's (1 worker, default packs, spool+fsync)",
            sat["ratio"],
            ">=",
            0.5,
            f"{sat['relay_events_per_second']:.0f} / {sat['ceiling_events_per_second']:.0f} events/s; "
            f"in CPU per event {sat['cpu_ratio']:.2f}",
            sat["other_cores"],
        ),
        _target(
            "latency",
            f"p99 <= 20 ms at 50% of saturation ({fixed['offered_per_second']:.0f} events/s offered, open loop)",
            without,
            "<=",
            20.0,
            f"median of rounds {fixed['without_big']['small_p99_per_round_ms']} ms",
            latency_noise,
        ),
        _target(
            "scrub",
            "scrub median <= 0.2x sentry_relay.pii_strip_event",
            scrub.get("ratio"),
            "<=",
            0.2,
            f"{scrub.get('relay_median_us')} / {scrub.get('anchor_default_median_us')} us per event"
            if scrub.get("available")
            else scrub.get("error", "sentry_relay not installed"),
        ),
        _target("memory", "peak RSS <= 150 MB at saturation (VmHWM)", round(rss_mb, 1), "<=", 150.0, "MB = 10^6 bytes"),
        _target(
            "big_events",
            f"small-event p99 with 1 MB events at {fixed['big_events_per_second']:g}/s <= 2x without",
            fixed["p99_ratio_with_big"],
            "<=",
            2.0,
            f"p99 {with_big} ms with, {without} ms without",
            big_noise,
        ),
        _target(
            "workers",
            "--workers 2 saturation >= 1.8x --workers 1 (unpinned, load generator shares the cores)",
            workers.get("ratio"),
            ">=",
            1.8,
            f"{workers['workers_2_events_per_second']:.0f} / {workers['workers_1_events_per_second']:.0f} events/s"
            if workers.get("available")
            else f"workers: {workers['why']}",
            workers.get("other_cores", 0.0),
        ),
    ]


def _target(
    key: str, name: str, value: float | None, op: str, goal: float, detail: str, other_cores: float = 0.0
) -> dict[str, Any]:
    met = value is not None and (value >= goal if op == ">=" else value <= goal)
    status = "N/A" if value is None else "PASS" if met else "FAIL"
    return {
        "key": key,
        "target": name,
        "value": value,
        "op": op,
        "goal": goal,
        "status": status,
        "detail": detail,
        "noisy": other_cores >= NOISY_CORES,  # the verdict may be the machine's, not the relay's
        "other_cores": other_cores,
    }


# -- printing ---------------------------------------------------------------------------------------------------


def show(result: dict[str, Any]) -> None:
    """Print the run: where, saturation, fixed load, big events, workers, scrub, then the targets."""
    commit, machine = result["commit"], result["machine"]
    dirty = f" + uncommitted changes in {len(commit['modified'])} file(s)" if commit.get("modified") else ""
    print(f"\n== relay performance ({result['when']}, commit {commit.get('sha')}{dirty})")
    print(
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs, Python {machine['python']}, "
        f"load average at start {result['loadavg_at_start']}"
    )
    print(f"pinning: {result['pinning']['summary']}")
    work = result["workload"]
    sizes = work["request_bytes"]
    print(
        f"workload: {work['events']} corpus events as envelopes ({sizes['min']}-{sizes['max']} bytes, median "
        f"{sizes['p50']}); relay config: {work['relay_config']}"
    )

    sat = result["saturation"]
    print(
        f"\nsaturation: closed loop, {work['concurrency']} connections, {work['round_seconds']:g}s rounds, "
        "ceiling and relay interleaved"
    )
    rows = [["round", "server", "accepted/s", "end-to-end/s", "drain s", "p50 ms", "p95 ms", "p99 ms"]]
    rows[0] += ["CPU util", "CPU ms/1k ev", "client CPU", "other load"]
    for r in sat["rounds"]:
        for side in ("ceiling", "relay"):
            x = r[side]
            lat = x["latency_ms"]
            e2e = x.get("end_to_end_per_second", x["events_per_second"])
            rows.append(
                [str(r["round"]), side, f"{x['events_per_second']:.0f}", f"{e2e:.0f}", str(x.get("drain_seconds", ""))]
                + [str(lat[q]) for q in ("p50", "p95", "p99")]
                + [f"{x['server_cpu_utilization']:.2f}", str(x["cpu_ms_per_1000_events"])]
                + [f"{x['client_cpu_utilization']:.2f}", f"{x['other_cores']:.2f}"]
            )
    _table(rows)
    print(
        "(end-to-end/s: accepted envelopes over the time until the upstream had the last of them; for the relay it"
        " is the sustained rate, since what the spool still holds when the load stops is work not yet done)"
    )
    lat = sat["relay_latency_ms"]
    print(
        f"median: relay {sat['relay_events_per_second']:.0f} events/s end to end "
        f"({sat['relay_accepted_per_second']:.0f}/s accepted), ceiling {sat['ceiling_events_per_second']:.0f}"
        f" events/s, ratio {sat['ratio']:.2f} (per round {sat['ratio_per_round']})"
    )
    print(f"relay latency at saturation: p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms")
    print(
        f"relay CPU per 1,000 events: {sat['relay_cpu_ms_per_1000_events'] / 1000:.2f} s, forwarding included "
        f"({sat['relay_system_cpu_share']:.0%} of it in the kernel; ceiling "
        f"{sat['ceiling_cpu_ms_per_1000_events'] / 1000:.2f} s)"
    )
    print(
        f"CPU per event, ceiling / relay: {sat['cpu_ratio']:.2f} (the throughput ratio in CPU time, which other "
        "processes on the machine disturb less)"
    )
    rss = sat["relay_peak_rss_kib"]
    after = result["relay_process"]["peak_rss_kib_after_big_events"]
    print(
        f"relay peak RSS (VmHWM): {rss['max'] * 1024 / MB:.1f} MB after saturation, "
        f"{after['max'] * 1024 / MB:.1f} MB after the big events"
    )
    _warn_unsaturated(sat)
    _warn_noise([r[side] for r in sat["rounds"] for side in ("ceiling", "relay")])

    fixed = result["fixed_load"]
    print(
        f"\nfixed load: open loop, {fixed['offered_per_second']:.0f} events/s offered "
        f"({fixed['fraction_of_saturation']:.0%} of saturation), {fixed['connections']} connections, "
        "latency from the scheduled send time; percentiles pooled over the rounds, targets use the median of the"
        " rounds' p99s"
    )
    rows = [["small events", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "p99 per round", "relay CPU"]]
    rows[0] += ["CPU ms/1k ev", "other load"]
    for name in ("without_big", "with_big"):
        x = fixed[name]
        lat = x["small_latency_ms"]
        label = "alone" if name == "without_big" else f"+ 1 MB events at {fixed['big_events_per_second']:g}/s"
        cells = [str(lat[q]) for q in ("n", "p50", "p95", "p99", "max")]
        loads = [f"{x['relay_cpu_utilization']:.2f}", str(x["relay_cpu_ms_per_1000_events"]), f"{x['other_cores']:.2f}"]
        rows.append([label, *cells, str(x["small_p99_per_round_ms"]), *loads])
    _table(rows)
    bigs = [r["big"] for r in fixed["rounds"] if "big" in r]
    if bigs:
        statuses: dict[str, int] = {}
        for b in bigs:
            for k, v in b["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        own = [(b["latency_ms"]["p50"], b["latency_ms"]["max"]) for b in bigs]
        print(f"big events: statuses {statuses}; their own latency (p50, max) per round {own} ms")
    print(
        f"small-event p99 (median of rounds): {fixed['with_big']['small_p99_ms']} ms with big events, "
        f"{fixed['without_big']['small_p99_ms']} ms without, ratio {fixed['p99_ratio_with_big']}"
    )
    outcomes = result["relay_process"]["outcomes"]
    print(f"relay outcomes (whole run): {outcomes}")
    drops = {k: v for k, v in outcomes.items() if not k.startswith("forwarded/")}
    if drops:
        print(f"NOTE: the relay dropped items (accepted with 200, never forwarded): {drops}")

    workers = result["workers"]
    if workers.get("available"):
        print(
            f"\nworkers ({workers['pinning']}): --workers 1 {workers['workers_1_events_per_second']:.0f} events/s, "
            f"--workers 2 {workers['workers_2_events_per_second']:.0f} events/s end to end, ratio {workers['ratio']}"
            f"; other processes used up to {workers['other_cores']:.2f} cores meanwhile"
        )
    else:
        print(f"\nworkers: {workers['why']}")

    scrub = result["scrub"]
    if scrub.get("available"):
        print(
            f"\nscrub engine (bench/scrub_bench.py, {scrub['path']}, written {scrub['age_seconds']}s ago): relay "
            f"median {scrub['relay_median_us']} us, pii_strip_event {scrub['anchor_default_median_us']} us, "
            f"ratio {scrub['ratio']}"
        )
    else:
        print(f"\nscrub engine: n/a ({scrub.get('error', 'sentry_relay not installed')})")

    print("\ntargets")
    rows = [["", "target", "measured", "goal", "detail"]]
    for t in result["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:g}"
        status = t["status"] + ("*" if t["noisy"] else "")
        rows.append([status, t["target"], value, f"{t['op']} {t['goal']:g}", t["detail"]])
    _table(rows)
    if any(t["noisy"] for t in result["targets"]):
        print(
            f"* other processes kept >= {NOISY_CORES:g} cores of this machine busy during those rounds: the verdict"
            " may be the machine's, not the relay's; rerun when it is quiet"
        )
    print(f"\nperf run took {result['seconds']:.0f}s")


def _warn_noise(rounds: list[dict[str, Any]]) -> None:
    """Other people's work on this machine during a round skews it: say how much there was."""
    worst = max(rounds, key=lambda r: r["other_cores"])
    if worst["other_cores"] >= 0.2:
        print(
            f"WARNING: other processes kept up to {worst['other_cores']:.2f} cores busy during a round "
            "(the machine is shared): absolute figures are depressed, compare ratios from this run"
        )


def _warn_unsaturated(sat: dict[str, Any]) -> None:
    """A server below ~90% CPU in a closed loop was not the only bottleneck: say so rather than mislead."""
    for side in ("ceiling", "relay"):
        worst = min((r[side] for r in sat["rounds"]), key=lambda x: x["server_cpu_utilization"])
        if worst["server_cpu_utilization"] < 0.9:
            print(
                f"WARNING: the {side} used only {worst['server_cpu_utilization']:.0%} of its core in a round (load "
                f"generator at {worst['client_cpu_utilization']:.0%} of its core, other processes "
                f"{worst['other_cores']:.2f} cores): it was not saturated, so that round understates it"
            )


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


def _commit(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return ""
        return out.stdout

    modified = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"sha": git("rev-parse", "--short", "HEAD").strip() or None, "modified": modified}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
