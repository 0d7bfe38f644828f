"""What Relay's fixtures (`mini_sentry`, `relay`, `send_event`, `send_envelope`, ...) do, for this relay."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from ..support import KEY, OTHER_KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, Received, auth_header

# mini_sentry's basic piiConfig (`$string: @email @mac @creditcard @userpath`, `$object: @password`), as a pack.
BASIC_RULES = f"[{Path(__file__).with_name('relay_basic.yml')}]"
DEFAULT_RULES = "[secrets, pii]"
HELLO = {"message": "Hello, World!"}
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/15.5 Safari/605.1.15"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/74.0.3729.169 Safari/537.36"
)

Client = TestClient[Any, Any]


def projects_yaml(upstream_url: str, project_extra: str = "", *, others: str = "") -> str:
    """Project 42 (keys KEY and OTHER_KEY, routed to upstream project 4501) with extra YAML lines, then `others`."""
    dsn = f"{upstream_url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    extra = "".join(f"\n    {line}" for line in project_extra.strip().splitlines())
    return f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{dsn}"{extra}
{others}"""


async def send_event(
    client: Client,
    payload: dict[str, Any] | bytes | None = None,
    *,
    project: int = PROJECT,
    key: str = KEY,
    legacy: bool = False,
    headers: dict[str, str] | None = None,
) -> Any:
    """Relay's `send_event`: POST a JSON (or raw) event to the store endpoint with X-Sentry-Auth."""
    body = orjson.dumps(HELLO if payload is None else payload) if not isinstance(payload, bytes) else payload
    url = "/api/store/" if legacy else f"/api/{project}/store/"
    all_headers = {"Content-Type": "application/octet-stream", **auth_header(key), **(headers or {})}
    return await client.post(url, data=body, headers=all_headers)


def envelope(*items: tuple[str, Any] | tuple[str, Any, dict[str, Any]], headers: dict[str, Any] | None = None) -> bytes:
    """Envelope bytes from (type, payload[, item headers]); dict and list payloads are JSON."""
    parts = [orjson.dumps(headers or {}), b"\n"]
    for entry in items:
        item_type, payload = entry[0], entry[1]
        extra = entry[2] if len(entry) > 2 else {}
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        parts += [orjson.dumps({"type": item_type, **extra, "length": len(body)}), b"\n", body, b"\n"]
    return b"".join(parts)


async def send_envelope(
    client: Client, body: bytes, *, project: int = PROJECT, key: str = KEY, headers: dict[str, str] | None = None
) -> Any:
    """Relay's `send_envelope`: POST envelope bytes with X-Sentry-Auth."""
    all_headers = {"Content-Type": "application/x-sentry-envelope", **auth_header(key), **(headers or {})}
    return await client.post(f"/api/{project}/envelope/", data=body, headers=all_headers)


def items(rec: Received, item_type: str) -> list[Any]:
    """The items of one type in a received envelope."""
    return [item for item in rec.envelope.items if item.type == item_type]


def event_of(rec: Received) -> dict[str, Any]:
    """Relay's `envelope.get_event()`: the event item's payload."""
    (event,) = items(rec, "event")
    return event.json()  # type: ignore[no-any-return]


def message_of(event: dict[str, Any]) -> Any:
    """The event's message. Relay's tests read `logentry.formatted`, which Sentry's normalization fills from
    `message`; that normalization is the upstream's, so the raw `message` counts as the same text."""
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        return logentry.get("formatted", logentry.get("message"))
    return event.get("message")


async def settle(upstream: FakeUpstream, count: int, seconds: float = 0.5) -> None:
    """Wait a while, then require exactly `count` envelopes at the upstream (Relay's `assert_empty` and friends)."""
    await asyncio.sleep(seconds)
    assert len(upstream.received) == count, [[i.type for i in r.envelope.items] for r in upstream.received]


def payloads(upstream: FakeUpstream, item_type: str) -> list[Any]:
    """Every payload of this item type the upstream received, parsed."""
    return [item.json() for item in upstream.items(item_type)]


async def client_reports(upstream: FakeUpstream, timeout: float = 5.0, *, at_least: int = 1) -> list[dict[str, Any]]:
    """Wait for `at_least` client reports at the upstream and return every one received."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(payloads(upstream, "client_report")) < at_least:
        assert asyncio.get_running_loop().time() < deadline, "no client report reached the upstream"
        await asyncio.sleep(0.02)
    return payloads(upstream, "client_report")


def report_totals(reports: list[dict[str, Any]], field: str) -> dict[tuple[str, str], int]:
    """{(reason, category): quantity} summed over the reports' `field` (dict or Relay's legacy list form)."""
    totals: dict[tuple[str, str], int] = {}
    for report in reports:
        for entry in report.get(field, []):
            if isinstance(entry, list):
                reason, category, quantity = entry
            else:
                reason, category, quantity = entry["reason"], entry["category"], entry["quantity"]
            totals[(reason, category)] = totals.get((reason, category), 0) + quantity
    return totals


class RecordingUpstream:
    """An upstream that answers every path with a fixed status and records what was asked (mini_sentry's
    view functions, overridden)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.paths: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        """A catch-all app."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.paths.append((request.method, request.path))
        await request.read()
        return web.json_response({}, status=self.status)
