"""What the load generator sends: corpus events as SDK envelopes, pre-rendered as raw HTTP/1.1 requests.

Everything is built before anything is timed, so the client only writes bytes. The same request bytes
go to the relay and to the ceiling server (both serve `POST /api/<project>/envelope/`).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

PROJECT = 42
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
UPSTREAM_PROJECT = 4501
UPSTREAM_KEY = "fedcba9876543210fedcba9876543210"
SDK = {"name": "sentry.python", "version": "2.19.0"}
AUTH = f"Sentry sentry_version=7, sentry_key={PUBLIC_KEY}, sentry_client=sentry.python/2.19.0"
CORPUS_SEED = 7  # the seed scrub_bench.py generates the corpus with, so both benches share one file
BIG_EVENT_BYTES = 1_000_000  # under limits.max_event_size (1 MiB), so the relay must take it
_WORDS = ("order", "shipped", "late", "customer", "refund", "invoice", "pending", "warehouse", "label", "retry")


def load_events(path: Path, n: int) -> list[dict[str, Any]]:
    """The first `n` corpus events, generating the corpus if it is missing or too small."""
    if path.exists():
        records = corpus.load(path)
        if len(records) >= n:
            return [r["event"] for r in records[:n]]
    print(f"generating {n} corpus events into {path} (seed {CORPUS_SEED}) ...", file=sys.stderr)
    corpus.write(corpus.generate(n, CORPUS_SEED), path)
    return [r["event"] for r in corpus.load(path)[:n]]


def envelope(event: dict[str, Any], event_id: str) -> bytes:
    """One envelope as sentry-python sends it: header (event id, dsn, sdk, trace), item header, event."""
    event = dict(event, event_id=event_id)
    payload = orjson.dumps(event)
    trace = (event.get("contexts") or {}).get("trace") or {}
    header = {
        "event_id": event_id,
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "dsn": f"http://{PUBLIC_KEY}@127.0.0.1/{PROJECT}",
        "sdk": event.get("sdk") or SDK,
        "trace": {"trace_id": trace.get("trace_id") or uuid.uuid4().hex, "public_key": PUBLIC_KEY},
    }
    item = {"type": "event", "length": len(payload)}
    return orjson.dumps(header) + b"\n" + orjson.dumps(item) + b"\n" + payload + b"\n"


def request(body: bytes) -> bytes:
    """A keep-alive `POST /api/<project>/envelope/` with the project's X-Sentry-Auth."""
    head = (
        f"POST /api/{PROJECT}/envelope/ HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Content-Type: application/x-sentry-envelope\r\n"
        f"X-Sentry-Auth: {AUTH}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def small_requests(events: list[dict[str, Any]], seed: int) -> list[bytes]:
    """One request per corpus event, each with its own event id."""
    rng = random.Random(seed)
    return [request(envelope(event, f"{rng.getrandbits(128):032x}")) for event in events]


def big_event(base: dict[str, Any], seed: int, size: int = BIG_EVENT_BYTES) -> dict[str, Any]:
    """`base` with a frame whose `vars` are a ~`size`-byte dump of nested dicts and strings.

    It looks like what an SDK with generous limits captures when a frame holds a large ORM result:
    rows of dicts, nested a few levels, with some customer emails planted in them.
    """
    rng = random.Random(seed)
    event: dict[str, Any] = orjson.loads(orjson.dumps(base))
    event.pop("message", None)
    rows: list[dict[str, Any]] = []
    frame = {
        "filename": "app/reports/export.py",
        "abs_path": "/srv/shop/app/reports/export.py",
        "module": "app.reports.export",
        "function": "render_rows",
        "lineno": 212,
        "in_app": True,
        "context_line": "    return serializer.dump(rows)",
        "vars": {"rows": rows, "self": "<ExportJob id=9913>", "page": "3"},
    }
    values = event.setdefault("exception", {}).setdefault("values", [])
    if not values:
        values.append({"type": "ExportError", "value": "export failed", "stacktrace": {"frames": []}})
    values[-1].setdefault("stacktrace", {}).setdefault("frames", []).append(frame)
    used = len(orjson.dumps(event))
    n = 0
    while used < size - 400:
        n += 1
        email = f"'customer{rng.randrange(10**6)}@example.com'" if n % 10 == 0 else "''"
        row = {
            "id": str(n),
            "status": rng.choice(["'paid'", "'open'", "'refunded'"]),
            "billing": {
                "contact_email": email,
                "address": {"city": "'Springfield'", "lines": [f"'{rng.randrange(999)} Main St'", "'Suite 4'"]},
            },
            "items": [{"sku": f"'SKU-{rng.randrange(10**5):05d}'", "qty": str(rng.randrange(1, 9))} for _ in range(3)],
            "note": "'" + " ".join(rng.choice(_WORDS) for _ in range(12)) + "'",
        }
        rows.append(row)
        used += len(orjson.dumps(row)) + 1
    return event


def big_requests(events: list[dict[str, Any]], seed: int, count: int = 4) -> list[bytes]:
    """A few different ~1 MB events (built on corpus exceptions), as requests."""
    rng = random.Random(seed)
    bases = [e for e in events if e.get("exception")][:count] or events[:count]
    return [request(envelope(big_event(b, seed + i), f"{rng.getrandbits(128):032x}")) for i, b in enumerate(bases)]
