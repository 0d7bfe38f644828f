"""Scrubbing benchmark on the independent corpus (bench/extcorpus): what leaks, by kind and placement.

    python bench/ext_bench.py [--rebuild] [--build-only] [--details N] [--out bench/results/ext_scrub.json]

The corpus is built into bench/data/ext/ if missing (or with --rebuild). Every item of every event (events,
transactions, spans, logs) is scrubbed by relay's engine with the shipped packs, as the relay does by default
(the engine comes from scrub_bench.build_engines). Figures are printed beside the targets of issue 14 and
written to bench/results/ext_scrub.json. See bench/README-scrub.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extcorpus
from scrub_bench import _clip, _esc, _pct, _spread, _table, _version, build_engines, structure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ext_scrub.json"
TARGETS = {
    "leak_pct_max": 1.0,
    "kind_leak_pct_max": 5.0,
    "name_free_text_leak_pct_max": 50.0,
    "decoys_kept_pct_min": 99.5,
}
EVENT_TYPES = {"event", "transaction"}
# Kinds whose value is a number with separators: a copy with the separators gone (digits only, or
# whitespace stripped) that shows up after scrubbing is the same number leaking.
_NUMBERISH = re.compile(r"^(phone_|card$|iban$|national_id_faker$|[a-z]{2}_|nino$|nhs$)")


def _relay(rules: tuple[str, ...] | None = None) -> tuple[Any, Any, list[str]]:
    """relay's engine as scrub_bench builds it: (scrub_event, the Scrubber for other items, notes)."""
    engines, notes = build_engines(rules)
    relay = next(e for e in engines if e.name == "relay")
    return relay.run, relay.run.scrubber, notes  # type: ignore[attr-defined]


def scrub_payload(scrubber: Any, payload: Any, root: str, kind: str) -> Any:
    """A non-event item as the server scrubs it (SQL literals in spans, then the rules)."""
    from relay.scrub.items import scrub_payload as scrub

    return scrub(scrubber, payload, root, kind=kind)


def _roots() -> dict[str, str]:
    from relay.scrub.items import JSON_ROOTS

    return JSON_ROOTS


def _forms(kind: str, value: str, original: str) -> list[str]:
    forms = [value]
    if _NUMBERISH.match(kind):
        for alt in (re.sub(r"\D", "", value), re.sub(r"\s", "", value)):
            # Only a form the event did not already carry: it can only be there because the value leaked.
            if alt != value and len(alt) >= 6 and _esc(alt) not in original:
                forms.append(alt)
    return forms


class Tally:
    """Counts by label attribute, and the records of what went wrong."""

    def __init__(self) -> None:
        self.planted: dict[str, Counter[str]] = defaultdict(Counter)
        self.leaked: dict[str, Counter[str]] = defaultdict(Counter)
        self.decoys: Counter[str] = Counter()
        self.sql_literal_decoys = 0  # decoys planted as SQL literals: masked by design, so not scored
        self.kept: Counter[str] = Counter()
        self.leaks: list[dict[str, Any]] = []
        self.destroyed: list[dict[str, Any]] = []
        self.structure_changed: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.events = 0
        self.items = 0

    def add(self, label: dict[str, Any], sdk: str, leaked: bool) -> None:
        keys = {
            "kind": label["kind"],
            "placement": label["placement"],
            "source": label["source"],
            "sdk": sdk,
            "region": f"{label['kind'].split('_')[0] if label['kind'].startswith('phone') else label['kind']}"
            f"@{label['region']}",
        }
        for axis, key in keys.items():
            self.planted[axis][key] += 1
            if leaked:
                self.leaked[axis][key] += 1


def score(record: dict[str, Any], scrub_event: Any, scrubber: Any, roots: dict[str, str], tally: Tally) -> None:
    """Scrub every item of one record and count its leaks, kept decoys and structure changes."""
    originals, outputs = [], []
    for item in record["items"]:
        payload = json.loads(json.dumps(item["payload"]))
        originals.append(json.dumps(item["payload"], ensure_ascii=False))
        try:
            if item["type"] in EVENT_TYPES:
                out = scrub_event(payload)
            else:
                out = scrub_payload(scrubber, payload, roots.get(item["type"], "@" + item["type"]), kind=item["type"])
        except Exception as exc:  # an item the engine fails on is dropped (fail closed): nothing leaks from it
            tally.errors.append(f"{record['id']} {item['type']}: {type(exc).__name__}: {exc}")
            out = None
        outputs.append(json.dumps(out, ensure_ascii=False) if out is not None else "")
        tally.items += 1
        if item["type"] == "event" and out is not None and structure(out) != structure(item["payload"]):
            tally.structure_changed.append(
                {
                    "event": record["id"],
                    "sdk": record["sdk"],
                    "before": structure(item["payload"]),
                    "after": structure(out),
                }
            )
    tally.events += 1
    original, output = "\n".join(originals), "\n".join(outputs)
    for label in record["planted"]:
        forms = _forms(label["kind"], label["value"], original)
        hit = next((f for f in forms if _esc(f) in output), None)
        tally.add(label, record["sdk"], hit is not None)
        if hit is not None:
            at = output.find(_esc(hit))
            tally.leaks.append(
                {
                    "event": record["id"],
                    "sdk": record["sdk"],
                    "kind": label["kind"],
                    "region": label["region"],
                    "placement": label["placement"],
                    "where": label["where"],
                    "value": label["value"],
                    "form": hit,
                    "shown_as": _clip(output[max(0, at - 60) : at + len(hit) + 60], hit),
                }
            )
    for decoy in record["decoys"]:
        esc = _esc(decoy["value"])
        if decoy["placement"] == "sql":
            # A literal in SQL is replaced by a placeholder whatever it is (issue 14, section 6): not a decoy's test.
            tally.sql_literal_decoys += 1
            continue
        tally.decoys[decoy["kind"]] += 1
        if output.count(esc) >= original.count(esc):
            tally.kept[decoy["kind"]] += 1
        else:
            tally.destroyed.append(
                {
                    "event": record["id"],
                    "kind": decoy["kind"],
                    "value": decoy["value"],
                    "where": decoy["where"],
                    "placement": decoy["placement"],
                }
            )


def _axis(tally: Tally, axis: str) -> dict[str, dict[str, Any]]:
    return {
        key: {"planted": n, "leaked": tally.leaked[axis][key], "leak_pct": _pct(tally.leaked[axis][key], n)}
        for key, n in sorted(tally.planted[axis].items())
    }


def summarize(tally: Tally) -> dict[str, Any]:
    """The figures, per axis, with the targets and whether each is met."""
    planted = sum(tally.planted["kind"].values())
    leaked = sum(tally.leaked["kind"].values())
    decoys = sum(tally.decoys.values())
    per_kind = _axis(tally, "kind")
    over = {
        k: v["leak_pct"]
        for k, v in per_kind.items()
        if v["leak_pct"]
        > (TARGETS["name_free_text_leak_pct_max"] if k == "name_free_text" else TARGETS["kind_leak_pct_max"])
    }
    decoys_kept = _pct(sum(tally.kept.values()), decoys)
    return {
        "events": tally.events,
        "items": tally.items,
        "errors": len(tally.errors),
        "planted": planted,
        "leaked": leaked,
        "leak_pct": _pct(leaked, planted),
        "decoys": decoys,
        "sql_literal_decoys": tally.sql_literal_decoys,
        "decoys_kept_pct": decoys_kept,
        "structure_changed_events": len(tally.structure_changed),
        "targets": TARGETS,
        "met": {
            "leak_pct": _pct(leaked, planted) <= TARGETS["leak_pct_max"],
            "kinds": not over,
            "decoys_kept_pct": decoys_kept >= TARGETS["decoys_kept_pct_min"],
        },
        "kinds_over_target": over,
        "per_kind": per_kind,
        "per_placement": _axis(tally, "placement"),
        "per_source": _axis(tally, "source"),
        "per_sdk": _axis(tally, "sdk"),
        "per_region": _axis(tally, "region"),
        "decoy_kinds": {
            k: {"decoys": n, "kept": tally.kept[k], "kept_pct": _pct(tally.kept[k], n)}
            for k, n in sorted(tally.decoys.items())
        },
    }


def report(s: dict[str, Any], tally: Tally, details: int) -> None:
    """Print the tables."""
    ok = {True: "ok", False: "MISSED"}
    t = s["targets"]
    print(
        f"\n{s['events']} events ({s['items']} items), {s['planted']} planted values, {s['decoys']} decoys "
        f"(and {s['sql_literal_decoys']} as SQL literals, which are masked by design and not scored)\n"
    )
    _table(
        ["figure", "value", "target", ""],
        [
            ["leak %", f"{s['leak_pct']:.2f}", f"<= {t['leak_pct_max']}", ok[s["met"]["leak_pct"]]],
            [
                "kinds over target",
                str(len(s["kinds_over_target"])),
                f"0 (> {t['kind_leak_pct_max']} %; name_free_text > {t['name_free_text_leak_pct_max']} %)",
                ok[s["met"]["kinds"]],
            ],
            [
                "decoys kept %",
                f"{s['decoys_kept_pct']:.2f}",
                f">= {t['decoys_kept_pct_min']}",
                ok[s["met"]["decoys_kept_pct"]],
            ],
            ["structure changed", str(s["structure_changed_events"]), "0", ok[s["structure_changed_events"] == 0]],
            ["engine errors", str(s["errors"]), "0", ok[s["errors"] == 0]],
        ],
    )
    for axis, title in (("per_placement", "placement"), ("per_source", "source"), ("per_sdk", "sdk")):
        print(f"\nleak % by {title}")
        _table(
            [title, "n", "leaked", "leak %"],
            [[k, str(v["planted"]), str(v["leaked"]), f"{v['leak_pct']:.1f}"] for k, v in s[axis].items()],
        )
    kinds = sorted(s["per_kind"].items(), key=lambda kv: (-kv[1]["leak_pct"], kv[0]))
    plain = [(k, v) for k, v in kinds if not k.startswith("secret:")]
    rules = [(k, v) for k, v in kinds if k.startswith("secret:")]
    n, leaked = sum(v["planted"] for _, v in rules), sum(v["leaked"] for _, v in rules)
    print("\nleak % by kind (worst first; the gitleaks rules together in one row)")
    rows = [
        [k, str(v["planted"]), str(v["leaked"]), f"{v['leak_pct']:.1f}", "<= 50" if k == "name_free_text" else "<= 5"]
        for k, v in plain
    ]
    if rules:
        rows.append([f"secret:* ({len(rules)} rules)", str(n), str(leaked), f"{_pct(leaked, n):.1f}", "<= 5 each"])
    _table(["kind", "n", "leaked", "leak %", "target"], rows)
    leaking = [k.removeprefix("secret:") for k, v in rules if v["leaked"]]
    if leaking:
        print(
            f"\ngitleaks rules with leaks ({len(leaking)} of {len(rules)}): {', '.join(leaking[: details * 3])}"
            + (" ..." if len(leaking) > details * 3 else "")
        )
    phones = sorted(
        ((k, v) for k, v in s["per_region"].items() if k.startswith("phone@") and v["leaked"]),
        key=lambda kv: (-kv[1]["leak_pct"], kv[0]),
    )
    print(f"\nphones: worst regions, {min(details, len(phones))} of {len(phones)} with leaks")
    _table(
        ["region", "n", "leak %"],
        [[k.removeprefix("phone@"), str(v["planted"]), f"{v['leak_pct']:.1f}"] for k, v in phones[:details]],
    )
    print("\ndecoys kept % by kind")
    _table(
        ["kind", "n", "kept %"], [[k, str(v["decoys"]), f"{v['kept_pct']:.1f}"] for k, v in s["decoy_kinds"].items()]
    )
    if tally.leaks:
        print("\nleaks, examples")
        for x in _spread(tally.leaks, details):
            print(
                f"  #{x['event']} {x['sdk']} {x['kind']}@{x['region']} {x['placement']}/{x['where']}: {x['shown_as']!r}"
            )
    if tally.destroyed:
        print("\ndestroyed decoys, examples")
        for x in _spread(tally.destroyed, details):
            print(f"  #{x['event']} {x['kind']} {x['placement']}/{x['where']}: {x['value']!r}")
    if tally.structure_changed:
        print("\nevents whose structure changed (exception types, frame functions, modules, paths, lines)")
        for x in tally.structure_changed[:details]:
            print(f"  #{x['event']} {x['sdk']}: {_clip(x['before'], width=80)} -> {_clip(x['after'], width=80)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build the corpus even if it is cached")
    parser.add_argument("--build-only", action="store_true", help="build the corpus and stop")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--details", type=int, default=15, help="examples to print per list")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rules", help="rule packs, comma-separated (default: the default config's, secrets,pii)")
    args = parser.parse_args(argv)

    meta_path = extcorpus.META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else None
    if (
        args.rebuild
        or args.build_only
        or meta is None
        or meta.get("seed") != args.seed
        or not extcorpus.CORPUS.exists()
    ):
        print(f"building the independent corpus into {extcorpus.CORPUS.parent} (seed {args.seed}) ...", file=sys.stderr)
        meta = extcorpus.build(args.seed)
    for note in meta["notes"]:
        print(f"note: {note}")
    if args.build_only:
        print(json.dumps({k: v for k, v in meta.items() if k != "notes"}, indent=2))
        return 0
    scrub_event, scrubber, notes = _relay(tuple(args.rules.split(",")) if args.rules else None)
    roots = _roots()
    tally = Tally()
    started = time.monotonic()
    for record in extcorpus.load():
        score(record, scrub_event, scrubber, roots, tally)
    summary = summarize(tally)
    report(summary, tally, args.details)
    payload = {
        "corpus": {k: v for k, v in meta.items()},
        "engine": "relay: ScrubberRegistry(Config()).for_project(None), default packs (secrets, pii)",
        "environment": {"sentry_relay": _version("sentry-relay"), "scored_in_s": round(time.monotonic() - started, 1)},
        "notes": [n for n in notes if "sentry_relay" not in n],
        "relay": summary,
        "relay_leaks": tally.leaks[:1000],
        "relay_destroyed_decoys": tally.destroyed[:500],
        "relay_structure_changed": tally.structure_changed[:100],
        "relay_errors": tally.errors[:100],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
