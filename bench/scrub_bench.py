"""PII scrubbing benchmark: relay's engine against Sentry Relay (`sentry_relay`) and the SDK's EventScrubber.

    python bench/scrub_bench.py [--events N] [--corpus bench/data/corpus.jsonl]

The corpus (bench/corpus.py) is loaded, or generated if missing or too small. Every engine scrubs a fresh
copy of every event; figures are printed and written to bench/results/scrub.json. See bench/README-scrub.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scrub.json"
WARMUP_SEED = 1_000_003

# Sentry's classic "server-side data scrubbing" defaults, as a project with them switched on gets.
ANCHOR_DEFAULT_SETTINGS = {
    "scrubData": True,
    "scrubDefaults": True,
    "scrubIpAddresses": True,
    "sensitiveFields": [],
    "excludeFields": [],
}
# Every built-in rule of sentry_relay 0.10 on every field. `@anything` is left out: it is not a detector
# but "replace every value", which would score 0 % leaks and 0 % decoys and say nothing.
# (validate_pii_config accepts unknown rule names, so this list was checked against the library itself.)
ANCHOR_ALL_RULES = [
    "@common",
    "@ip",
    "@email",
    "@creditcard",
    "@iban",
    "@usssn",
    "@pemkey",
    "@urlauth",
    "@userpath",
    "@password",
    "@bearer",
    "@cookies",
    "@imei",
    "@mac",
    "@uuid",
]

_HOME = re.compile(r"((?:^|[\\/])(?:home|Users|Documents and Settings)[\\/]+)[^\\/]*")
_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")  # list indexes in a shown path


# -- engines ------------------------------------------------------------------------------------------------


@dataclass
class Engine:
    name: str
    description: str
    run: Callable[[dict[str, Any]], Any]
    finish: Callable[[Any], Any] | None = None  # untimed: turn the output into the JSON that would be sent


def build_engines(rules: tuple[str, ...] | None = None) -> tuple[list[Engine], list[str]]:
    """The engines that can run here, and notes about any that cannot."""
    from sentry_sdk.scrubber import EventScrubber

    from relay.config import Config
    from relay.scrub.items import scrub_event
    from relay.scrub.registry import ScrubberRegistry

    notes: list[str] = []
    scrubber = ScrubberRegistry(Config() if rules is None else Config(rules=rules)).for_project(None)

    def relay(event: dict[str, Any]) -> Any:  # as the server scrubs an event item (SQL literals, rules, `_meta`)
        return scrub_event(scrubber, event)

    relay.scrubber = scrubber  # type: ignore[attr-defined]
    engines = [Engine("relay", "relay engine, default packs (secrets, pii)", relay)]
    try:
        import sentry_relay
    except ImportError:
        notes.append("sentry_relay is not importable (pip install -e '.[bench]'): anchors skipped")
    else:
        default_cfg = sentry_relay.convert_datascrubbing_config(ANCHOR_DEFAULT_SETTINGS)
        all_cfg = {"applications": {"**": ANCHOR_ALL_RULES}}
        sentry_relay.validate_pii_config(json.dumps(default_cfg))
        sentry_relay.validate_pii_config(json.dumps(all_cfg))

        def anchor_default(event: dict[str, Any]) -> Any:
            return sentry_relay.pii_strip_event(default_cfg, event)

        def anchor_all(event: dict[str, Any]) -> Any:
            return sentry_relay.pii_strip_event(all_cfg, event)

        engines.append(Engine("anchor-default", "sentry_relay.pii_strip_event, default data scrubbing", anchor_default))
        engines.append(Engine("anchor-all", "sentry_relay.pii_strip_event, every built-in rule on **", anchor_all))
    from sentry_sdk.utils import AnnotatedValue

    sdk = EventScrubber()

    def sdk_scrub(event: dict[str, Any]) -> Any:
        sdk.scrub_event(event)
        return event

    def flatten(value: Any) -> Any:  # what the SDK's serializer later does with AnnotatedValue("[Filtered]")
        if isinstance(value, AnnotatedValue):
            return flatten(value.value)
        if isinstance(value, dict):
            return {k: flatten(v) for k, v in value.items()}
        if isinstance(value, list):
            return [flatten(v) for v in value]
        return value

    engines.append(Engine("sdk-scrubber", "sentry_sdk.scrubber.EventScrubber() (client side)", sdk_scrub, flatten))
    return engines, notes


# -- scoring --------------------------------------------------------------------------------------------------


def _esc(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if value is not None else ""


def _partial(value: str, kind: str, out: str, original: str) -> bool:
    """Part of the value survived: a run of at least half of it (for user paths: the last word of a name with
    spaces), found in the output more often than it occurs in the original outside this value."""
    if kind == "user_path":
        name = re.split(r"[\\/]+", value.rstrip("\\/"))[-1]
        windows = [" " + name.split()[-1] + value[-1]] if " " in name else []
    elif len(value) < 10:
        windows = []
    else:
        width = max(8, math.ceil(len(value) / 2))
        step = max(1, (len(value) - width) // 16)
        windows = [value[i : i + width] for i in range(0, len(value) - width + 1, step)]
    whole = _esc(value)
    copies = original.count(whole)
    for window in windows:
        esc = _esc(window)
        if out.count(esc) > original.count(esc) - copies * whole.count(esc):
            return True
    return False


def structure(event: Any) -> list[Any]:
    """What must survive for stack traces to stay useful (home directories normalized away)."""
    if not isinstance(event, dict):
        return []
    exc = event.get("exception")
    values = exc.get("values") if isinstance(exc, dict) else None
    out = []
    for value in values or []:
        if not isinstance(value, dict):
            out.append(None)
            continue
        frames = (value.get("stacktrace") or {}).get("frames") or []
        out.append(
            (
                value.get("type"),
                value.get("module"),
                [
                    (
                        f.get("function"),
                        f.get("module"),
                        _norm_path(f.get("filename")),
                        _norm_path(f.get("abs_path")),
                        f.get("lineno"),
                    )
                    for f in frames
                    if isinstance(f, dict)
                ],
            )
        )
    return out


def _norm_path(path: Any) -> Any:
    return _HOME.sub(r"\1~", path) if isinstance(path, str) else path


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, text) for every string or number in a payload."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield path, str(value)
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, str(index)))


def _show(path: tuple[str, ...]) -> str:
    return ".".join(f"'{p}'" if "." in p else p for p in path)


def lookup(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(value, dict):
            if part not in value:
                return "<missing>"
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return "<missing>"
    return value


def _clip(text: Any, around: str = "", width: int = 110) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    if len(text) <= width:
        return text
    at = text.find(around) if around else -1
    start = max(0, min(at - width // 3, len(text) - width)) if at >= 0 else 0
    return ("…" if start else "") + text[start : start + width] + "…"


@dataclass
class Tally:
    planted: Counter[str] = field(default_factory=Counter)
    leaked: Counter[str] = field(default_factory=Counter)
    partial: Counter[str] = field(default_factory=Counter)
    decoys: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    events: int = 0
    structure_kept: int = 0
    errors: int = 0
    times_ns: list[int] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    destroyed: list[dict[str, Any]] = field(default_factory=list)


def score(tally: Tally, record: dict[str, Any], original_json: str, out: Any, detail: bool) -> None:
    event = record["event"]
    out_json = _dump(out)
    tally.events += 1
    if out is None:
        tally.errors += 1
    elif structure(out) == structure(event):
        tally.structure_kept += 1
    for plant in record["planted"]:
        kind, value = plant["kind"], plant["value"]
        tally.planted[kind] += 1
        if _esc(value) in out_json:
            tally.leaked[kind] += 1
            if detail:
                where = [p for p, text in leaves(out) if value in text]
                tally.leaks.append(
                    {
                        "event": record["id"],
                        "kind": kind,
                        "value": value,
                        "where": [_show(p) for p in where],
                        "shown_as": _clip(lookup(out, where[0]), value) if where else None,
                    }
                )
        elif _partial(value, kind, out_json, original_json):
            tally.partial[kind] += 1
            if detail:
                where = [p for p, text in leaves(event) if value in text]
                tally.leaks.append(
                    {
                        "event": record["id"],
                        "kind": kind,
                        "value": value,
                        "partial": True,
                        "where": [_show(p) for p in where],
                        "became": [_clip(lookup(out, p)) for p in where[:2]],
                    }
                )
    for decoy in record["decoys"]:
        kind, value = decoy["kind"], decoy["value"]
        tally.decoys[kind] += 1
        esc = _esc(value)
        if out_json.count(esc) >= original_json.count(esc):
            tally.kept[kind] += 1
        elif detail:
            where = [p for p, text in leaves(event) if value in text]
            lost = [p for p in where if value not in str(lookup(out, p))]
            tally.destroyed.append(
                {
                    "event": record["id"],
                    "kind": kind,
                    "value": value,
                    "where": [_show(p) for p in lost or where],
                    "became": [_clip(lookup(out, p), "") for p in (lost or where)[:2]],
                }
            )


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def summarize(engine: Engine, tally: Tally) -> dict[str, Any]:
    planted, decoys = sum(tally.planted.values()), sum(tally.decoys.values())
    per_kind = {
        kind: {
            "planted": n,
            "leaked": tally.leaked[kind],
            "leak_pct": _pct(tally.leaked[kind], n),
            "partial": tally.partial[kind],
            "partial_pct": _pct(tally.partial[kind], n),
        }
        for kind, n in sorted(tally.planted.items())
    }
    decoy_kinds = {
        kind: {"decoys": n, "kept": tally.kept[kind], "kept_pct": _pct(tally.kept[kind], n)}
        for kind, n in sorted(tally.decoys.items())
    }
    worst = max(per_kind.items(), key=lambda kv: (kv[1]["leak_pct"], kv[1]["planted"]), default=(None, {}))
    times = tally.times_ns
    return {
        "description": engine.description,
        "events": tally.events,
        "errors": tally.errors,
        "planted": planted,
        "leaked": sum(tally.leaked.values()),
        "leak_pct": _pct(sum(tally.leaked.values()), planted),
        "partial_leak_pct": _pct(sum(tally.partial.values()), planted),
        "worst_kind": worst[0],
        "worst_kind_leak_pct": worst[1].get("leak_pct", 0.0),
        "decoys": decoys,
        "decoys_kept_pct": _pct(sum(tally.kept.values()), decoys),
        "structure_kept_pct": _pct(tally.structure_kept, tally.events),
        "median_us": round(statistics.median(times) / 1000, 1) if times else None,
        "mean_us": round(statistics.fmean(times) / 1000, 1) if times else None,
        "p90_us": round(sorted(times)[int(len(times) * 0.9)] / 1000, 1) if times else None,
        "per_kind": per_kind,
        "decoy_kinds": decoy_kinds,
    }


# -- running --------------------------------------------------------------------------------------------------


def _records(path: Path, n: int, seed: int) -> list[dict[str, Any]]:
    if path.exists():
        records = corpus.load(path)
        if len(records) >= n:
            return records[:n]
    print(f"generating {n} events into {path} (seed {seed}) ...", file=sys.stderr)
    corpus.write(corpus.generate(n, seed), path)
    return corpus.load(path)[:n]


def _pin_cpu() -> int | None:
    try:
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def run_engines(
    engines: list[Engine], records: list[dict[str, Any]], raws: list[bytes], originals: list[str], warmup: list[bytes]
) -> dict[str, Tally]:
    """Every engine scrubs every event; engines take turns event by event, so load spikes on a shared
    machine hit them alike and the ratio of their medians stays meaningful."""
    for engine in engines:
        for raw in warmup:
            engine.run(orjson.loads(raw))
    tallies = {engine.name: Tally() for engine in engines}
    gc.collect()
    for record, raw, original in zip(records, raws, originals, strict=True):
        for engine in engines:
            tally = tallies[engine.name]
            event = orjson.loads(raw)
            start = time.perf_counter_ns()
            try:
                out = engine.run(event)
            except Exception as exc:  # an engine failing on an event drops it (fail closed)
                out = None
                print(f"{engine.name}: event {record['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            tally.times_ns.append(time.perf_counter_ns() - start)
            if engine.finish is not None and out is not None:
                out = engine.finish(out)
            score(tally, record, original, out, detail=engine.name == "relay")
    return tallies


def _shape(path: str) -> str:
    return _INDEX.sub("*", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events to score (default 1000)")
    parser.add_argument("--corpus", type=Path, default=corpus.DEFAULT_OUT, help="corpus JSON lines (made if missing)")
    parser.add_argument("--seed", type=int, default=7, help="seed when the corpus has to be generated")
    parser.add_argument("--warmup", type=int, default=200, help="separate warm-up events per engine (default 200)")
    parser.add_argument("--details", type=int, default=15, help="relay leaks / destroyed decoys to print")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    records = _records(args.corpus, args.events, args.seed)
    warm_path = args.corpus.with_name("warmup.jsonl")
    warm_records = _records(warm_path, args.warmup, WARMUP_SEED) if args.warmup else []
    raws = [orjson.dumps(r["event"]) for r in records]
    originals = [_dump(r["event"]) for r in records]
    warmup = [orjson.dumps(r["event"]) for r in warm_records]
    engines, notes = build_engines()
    # As the server does once start-up is done (relay.heap): collect, then freeze what lives on, so that the
    # collector doesn't walk the engines' compiled rules (and this corpus) on each full collection.
    from relay import heap

    heap.settle()
    cpu = _pin_cpu()
    for note in notes:
        print(f"note: {note}")

    results: dict[str, Any] = {}
    tallies = run_engines(engines, records, raws, originals, warmup)
    for engine in engines:
        results[engine.name] = summarize(engine, tallies[engine.name])

    planted = sum(len(r["planted"]) for r in records)
    decoys = sum(len(r["decoys"]) for r in records)
    print(
        f"\n{len(records)} events, {planted} planted values, {decoys} decoys; warm-up {len(warmup)} other events;"
        f" one core (cpu {cpu})\n"
    )
    header = [
        "engine",
        "leak %",
        "partial %",
        "worst kind leak %",
        "decoys kept %",
        "structure kept %",
        "median µs",
        "mean µs",
    ]
    rows = []
    for name, r in results.items():
        worst = f"{r['worst_kind_leak_pct']:.1f} ({r['worst_kind']})"
        rows.append(
            [
                name,
                f"{r['leak_pct']:.2f}",
                f"{r['partial_leak_pct']:.2f}",
                worst,
                f"{r['decoys_kept_pct']:.2f}",
                f"{r['structure_kept_pct']:.1f}",
                f"{r['median_us']:.0f}",
                f"{r['mean_us']:.0f}",
            ]
        )
    _table(header, rows)
    ratio = None
    if "anchor-default" in results:
        ratio = round(results["relay"]["median_us"] / results["anchor-default"]["median_us"], 2)
        print(f"\nrelay median / anchor-default median = {ratio}")
    else:
        print("\nrelay median / anchor-default median = n/a (sentry_relay not installed)")

    kinds = sorted({k for r in results.values() for k in r["per_kind"]})
    print("\nleak % by kind (partial leaks in brackets)")
    krows = []
    for kind in kinds:
        row = [kind, str(results["relay"]["per_kind"].get(kind, {}).get("planted", 0))]
        for r in results.values():
            k = r["per_kind"].get(kind, {})
            cell = f"{k.get('leak_pct', 0):.1f}"
            if k.get("partial"):
                cell += f" [{k['partial_pct']:.1f}]"
            row.append(cell)
        krows.append(row)
    _table(["kind", "n", *results], krows)
    print("\ndecoys kept % by kind")
    dkinds = sorted({k for r in results.values() for k in r["decoy_kinds"]})
    _table(
        ["kind", "n", *results],
        [
            [
                k,
                str(results["relay"]["decoy_kinds"].get(k, {}).get("decoys", 0)),
                *(f"{r['decoy_kinds'].get(k, {}).get('kept_pct', 0):.1f}" for r in results.values()),
            ]
            for k in dkinds
        ],
    )

    relay = tallies["relay"]
    leak_shapes = Counter(
        (x["kind"], _shape(x["where"][0]) if x["where"] else "?", bool(x.get("partial"))) for x in relay.leaks
    )
    lost_shapes = Counter((x["kind"], _shape(x["where"][0]) if x["where"] else "?") for x in relay.destroyed)
    if relay.leaks:
        print("\nrelay leaks by kind and place (count)")
        for (kind, where, partial), n in leak_shapes.most_common(args.details):
            print(f"  {n:4d}  {kind:16s} {'partial ' if partial else ''}{where}")
        print("\nrelay leaks, examples")
        for x in _spread(relay.leaks, args.details):
            shown = x.get("shown_as") if not x.get("partial") else x.get("became")
            print(f"  #{x['event']} {x['kind']}: {_clip(x['value'], width=60)!r} at {x['where'][:2]} -> {shown!r}")
    if relay.destroyed:
        print("\nrelay destroyed decoys by kind and place (count)")
        for (kind, where), n in lost_shapes.most_common(args.details):
            print(f"  {n:4d}  {kind:12s} {where}")
        print("\nrelay destroyed decoys, examples")
        for x in _spread(relay.destroyed, args.details):
            print(f"  #{x['event']} {x['kind']}: {x['value']!r} at {x['where'][:2]} -> {x['became']!r}")

    payload = {
        "corpus": {
            "path": str(args.corpus),
            "events": len(records),
            "planted": planted,
            "decoys": decoys,
            "warmup_events": len(warmup),
        },
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_pinned": cpu,
            "sentry_sdk": _version("sentry-sdk"),
            "sentry_relay": _version("sentry-relay"),
        },
        "anchor_default_settings": ANCHOR_DEFAULT_SETTINGS,
        "anchor_all_rules": ANCHOR_ALL_RULES,
        "notes": notes,
        "engines": results,
        "relay_median_over_anchor_default_median": ratio,
        "relay_leaks": relay.leaks[:500],
        "relay_leak_shapes": [
            {"kind": k, "where": w, "partial": p, "count": n} for (k, w, p), n in leak_shapes.most_common()
        ],
        "relay_destroyed_decoys": relay.destroyed[:500],
        "relay_destroyed_shapes": [{"kind": k, "where": w, "count": n} for (k, w), n in lost_shapes.most_common()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


def _spread(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to n items, round-robin over kinds so one kind does not crowd out the rest."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_kind[item["kind"]].append(item)
    out: list[dict[str, Any]] = []
    while len(out) < n and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(out) < n:
                out.append(by_kind[kind].pop(0))
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    raise SystemExit(main())
