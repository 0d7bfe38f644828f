"""How long a 1 MB Session Replay recording takes to scrub (read, scrub, recompress), with the default packs.

The segment is built from a real @sentry/browser recording (tests/e2e/data/replay_recording_sdk.bin, unmasked):
its rrweb events repeated, each copy with its own values, until the JSON passes --size bytes. Cold is the first
scrub (no string seen before); warm the median of the repeats (the scrubber's memo holds what repeats).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import zlib
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.config import Config  # noqa: E402
from relay.envelope import Item  # noqa: E402
from relay.scrub.items import scrub_item  # noqa: E402
from relay.scrub.registry import ScrubberRegistry  # noqa: E402

SAMPLE = ROOT / "tests" / "e2e" / "data" / "replay_recording_sdk.bin"
RESULTS = ROOT / "bench" / "results" / "replay.json"


def segment(size: int) -> tuple[bytes, int]:
    """A replay_recording payload whose rrweb JSON is at least `size` bytes, and that JSON's size."""
    header, _, body = SAMPLE.read_bytes().partition(b"\n")
    events = orjson.loads(zlib.decompress(body))
    copies: list[bytes] = []
    total, n = 0, 0
    while total < size:
        for event in events:
            text = orjson.dumps(event).replace(b"jane.doe", b"user%d.doe" % n).replace(b"7946 0958", b"7946 %04d" % n)
            copies.append(text)
            total += len(text) + 1
            n += 1
    raw = b"[" + b",".join(copies) + b"]"
    return header + b"\n" + zlib.compress(raw), len(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="uncompressed bytes (default 1 MB)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    payload, size = segment(args.size)
    scrubber = ScrubberRegistry(Config()).for_project(None)
    times = []
    for _ in range(args.repeats):
        item = Item({"type": "replay_recording"}, payload)
        start = time.perf_counter()
        scrub_item(item, scrubber)
        times.append(time.perf_counter() - start)
    result = {
        "uncompressed_bytes": size,
        "compressed_bytes": len(payload),
        "cold_ms": round(times[0] * 1000, 1),
        "warm_median_ms": round(statistics.median(times[1:]) * 1000, 1),
    }
    print(f"replay recording, {size} bytes of rrweb JSON ({len(payload)} compressed):")
    print(f"  cold {result['cold_ms']} ms, warm median {result['warm_median_ms']} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
