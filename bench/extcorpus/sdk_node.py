"""Replaying scenarios through the real @sentry/node SDK (node/capture.js, run with node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"


def unavailable() -> str | None:
    """Why the node SDK can't run here (None if it can); `npm ci` installs it from the lock file if needed."""
    if shutil.which("node") is None:
        return "node is not installed: @sentry/node shapes skipped"
    if not (NODE_DIR / "node_modules" / "@sentry" / "node").is_dir():
        if shutil.which("npm") is None:
            return "npm is not installed: @sentry/node shapes skipped"
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, capture_output=True, text=True
        )
        if done.returncode != 0:
            return f"npm ci failed in {NODE_DIR}: @sentry/node shapes skipped ({done.stderr.strip()[-300:]})"
    return None


def version() -> str | None:
    """The installed @sentry/node version."""
    path = NODE_DIR / "node_modules" / "@sentry" / "node" / "package.json"
    return json.loads(path.read_text(encoding="utf-8"))["version"] if path.exists() else None


def capture(scenarios: list[dict[str, Any]], timeout: float = 600) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(scenario id, item type, payload) for every event, span, transaction and log item the SDK sends."""
    done = subprocess.run(
        ["node", "capture.js"],
        cwd=NODE_DIR,
        input=json.dumps(scenarios, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"node capture.js failed: {done.stderr.strip()[-500:]}")
    for line in done.stdout.splitlines():
        item = json.loads(line)
        yield item["scenario"], item["type"], _strip_harness(item["payload"])


def _strip_harness(payload: dict[str, Any]) -> dict[str, Any]:
    """Frames of capture.js are the harness, not the app: their locals (the scenario) are dropped."""
    for exc in (payload.get("exception") or {}).get("values") or []:
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            if str(frame.get("filename", "")).endswith("/capture.js"):
                frame.pop("vars", None)
    return payload
