"""Building the corpus: collect values from the sources, place them into scenarios, replay the scenarios
through both SDKs, keep the labels whose values reached the payload, and make the result deterministic."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from . import decoys, nationalids, people, phones, sdk_node, sdk_python, secrets
from .model import Value, sub_rng
from .placement import Scenario

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "ext"
CORPUS = DATA / "corpus.jsonl"
META = DATA / "meta.json"
SECRETS_CACHE = DATA / "gitleaks-secrets.jsonl"
FORMAT = 1  # bump when the layout of a record changes

ID_KEYS = {"event_id", "trace_id", "span_id", "parent_span_id"}
TIME_KEYS = {"timestamp", "start_timestamp", "end_timestamp", "app_start_time", "boot_time"}
# Span and log attributes ({"value": ..., "type": ...}) that describe this run and machine.
ATTRIBUTE_KEYS: dict[str, Any] = {
    "server.port": 8080,
    "network.local.port": 8080,
    "client.port": 51000,
    "network.peer.port": 51000,
    "app.start_time": "2025-01-01T00:00:00.000Z",
    "device.boot_time": "2024-12-31T23:00:00.000Z",
    "app.memory": 104857600,
    "app.free_memory": 8589934592,
    "device.free_memory": 8589934592,
    "sentry.timestamp.sequence": 0,  # a clock tie-breaker
}
ITEM_ORDER = {"event": 0, "transaction": 1, "span": 2, "log": 3}
MACHINE_KEYS = {"app_memory": 104857600, "free_memory": 8589934592, "memory_size": 17179869184, "thread.id": "1"}
_ADDRESS = re.compile(r" at 0x[0-9a-f]{6,16}")
BASE_TIME = 1_735_689_600.0  # 2025-01-01T00:00:00Z


def collect(seed: int) -> tuple[list[Value], list[str]]:
    """Every value from every source, and notes on what was skipped."""
    values: list[Value] = [
        *people.values(seed),
        *phones.values(seed),
        *nationalids.values(seed),
        *decoys.values(seed),
    ]
    notes = [f"{reason}: {n} dropped" for reason, n in sorted(people.stats.items())]
    found, note = secrets.load(SECRETS_CACHE, seed)
    notes.append(note)
    return values + found, notes


def plan(values: list[Value], seed: int, node: bool) -> list[dict[str, Any]]:
    """Scenarios of 3-8 planted values and about half as many decoys, 40 % of them for the node SDK."""
    rng = sub_rng(seed, "plan")
    plants = [v for v in values if not v.decoy]
    fakes = [v for v in values if v.decoy]
    rng.shuffle(plants)
    rng.shuffle(fakes)
    out: list[dict[str, Any]] = []
    while plants:
        sdk = "node" if node and rng.random() < 0.4 else "python"
        scenario = Scenario(f"x{len(out):05d}", sdk, rng)
        chosen: list[Value] = []
        for _ in range(rng.randint(3, 8)):
            if plants:
                chosen.append(plants.pop())
        for _ in range(rng.randint(1, 4)):
            if fakes:
                chosen.append(fakes.pop())
        for value in chosen:
            # A value inside another one in the same event could not be scored apart from it.
            if not any(value.text in other.text for other in chosen if other is not value):
                scenario.place(value)
        out.append(scenario.finish())
    return out


def _esc(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _forms(form: str) -> list[str]:
    """The forms a written value can take in a payload: as written, repr-quoted (Python frame variables),
    unicode-escaped, or URL-decoded by the SDK."""
    return list(
        dict.fromkeys(
            [form, repr(form)[1:-1], form.encode("unicode_escape").decode(), unquote(form), unquote_plus(form)]
        )
    )


def verify(labels: list[dict[str, Any]], blob: str, dropped: Counter[str], sdk: str) -> list[dict[str, Any]]:
    """The labels whose value reached the payload, each with the form it has there."""
    kept = []
    for label in labels:
        form = next(
            (f for f in _forms(label["value"]) if len(f) >= (5 if f.isascii() else 2) and _esc(f) in blob), None
        )
        if form is None:
            dropped[f"{sdk}:{label['placement']}:{label['where']}"] += 1
            continue
        kept.append({**label, "value": form})
    return kept


def _paths() -> list[tuple[str, str]]:
    return sorted(
        {
            (str(sdk_node.NODE_DIR), "/srv/app"),
            (str(ROOT), "/srv/app"),
            (sys.base_prefix, "/usr/local"),
            (sys.prefix, "/srv/app/.venv"),
            (os.path.expanduser("~"), "/opt/build"),
        },
        key=lambda p: -len(p[0]),
    )


def normalize(items: list[dict[str, Any]], ident: str, keep: set[str]) -> list[dict[str, Any]]:
    """Replace what differs from run to run (ids, clocks, memory, this machine's paths) with stable values.
    Labeled values (`keep`) are never touched."""
    rng = sub_rng(0, "normalize:" + ident)
    ids: dict[str, str] = {}
    tick = iter(range(1, 1_000_000))

    def walk(node: Any, key: str = "") -> Any:
        if key in ATTRIBUTE_KEYS and isinstance(node, dict):
            return {**node, "value": ATTRIBUTE_KEYS[key]}
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items() if k != "modules"}
        if isinstance(node, list):
            if key == "sys.argv":
                return ["gunicorn", "shop.wsgi"]
            if key == "integrations" and all(isinstance(v, str) for v in node):
                return sorted(node)
            return [walk(v) for v in node]
        if key in ID_KEYS and isinstance(node, str) and node not in keep:
            return ids.setdefault(node, "".join(rng.choice("0123456789abcdef") for _ in range(len(node))))
        if key in TIME_KEYS and isinstance(node, int | float | str) and str(node) not in keep:
            t = BASE_TIME + next(tick) / 1000
            return t if not isinstance(node, str) else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
        if key in MACHINE_KEYS:
            return MACHINE_KEYS[key]
        return node

    # Items of one request are sent in no fixed order (the span envelope may go before the event).
    items = walk(sorted(items, key=lambda i: ITEM_ORDER.get(i["type"], 9)))
    text = json.dumps(items, ensure_ascii=False)
    for old, new in [*ids.items(), *_paths()]:
        if old and not any(old in k for k in keep):
            text = text.replace(old, new)
    # Ids embedded in headers, attributes and reprs (sentry-trace, baggage, sentry.segment.id) are mapped
    # above; object addresses in reprs of harness locals differ per run too.
    text = _ADDRESS.sub(" at 0x7f0000000000", text)
    result: list[dict[str, Any]] = json.loads(text)
    return result


def build(seed: int = 7, out: Path = CORPUS) -> dict[str, Any]:
    """Build the corpus into `out` (JSON lines) and return its metadata (also written to meta.json)."""
    started = time.monotonic()
    values, notes = collect(seed)
    why_not = sdk_node.unavailable()
    if why_not:
        notes.append(why_not)
    scenarios = plan(values, seed, node=why_not is None)
    by_id = {s["scenario"]["id"]: s for s in scenarios}
    captured: dict[str, list[dict[str, Any]]] = {ident: [] for ident in by_id}
    for sdk, capture in (("python", sdk_python.capture), ("node", sdk_node.capture)):
        batch = [s["scenario"] for s in scenarios if s["scenario"]["sdk"] == sdk]
        if batch:
            for ident, item_type, payload in capture(batch):
                captured[ident].append({"type": item_type, "payload": payload})
    dropped: Counter[str] = Counter()
    records = []
    for ident, spec in by_id.items():
        sdk = spec["scenario"]["sdk"]
        items = captured[ident]
        blob = "\n".join(json.dumps(i["payload"], ensure_ascii=False) for i in items)
        planted = verify(spec["planted"], blob, dropped, sdk)
        fakes = verify(spec["decoys"], blob, dropped, sdk)
        if not planted or not items:
            continue
        keep = {x["value"] for x in planted + fakes} | {x["raw"] for x in planted + fakes}
        records.append(
            {"id": ident, "sdk": sdk, "items": normalize(items, ident, keep), "planted": planted, "decoys": fakes}
        )
    _write(records, out)
    meta = {
        "format": FORMAT,
        "seed": seed,
        "events": len(records),
        "items": sum(len(r["items"]) for r in records),
        "planted": sum(len(r["planted"]) for r in records),
        "decoys": sum(len(r["decoys"]) for r in records),
        "sdks": dict(Counter(r["sdk"] for r in records)),
        "versions": {"faker": people.faker_version(), "sentry_node": sdk_node.version(), **_py_versions()},
        "notes": notes,
        "dropped_labels": dict(dropped.most_common()),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    out.with_name("meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def _py_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("sentry-sdk", "phonenumbers", "python-stdnum", "rstr")}


def _write(records: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
    tmp.replace(out)


def load(path: Path = CORPUS) -> Iterator[dict[str, Any]]:
    """Read the corpus records."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
