"""The real @sentry/browser SDK with Session Replay in headless Chromium: page -> relay -> fake upstream, over HTTP.

A small static server serves a page that loads the SDK (bundled from tests/js with esbuild) from another origin
than the relay's, so the browser applies CORS as it does in production. The page leaks personal data the way
real apps do (its URL, its text, a typed input, the console, the user scope and an error message); nothing of
it may reach the upstream, and what does arrive must still be what Sentry accepts.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sentry_relay.processing import StoreNormalizer

from relay.app import create_app
from relay.envelope import Envelope, Item, parse_envelope

from ..browser import Page, chromium, needs_chromium
from ..support import KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, make_config

JS = Path(__file__).resolve().parents[1] / "js"
ESBUILD = JS / "node_modules" / ".bin" / "esbuild"
SDK_PACKAGE = JS / "node_modules" / "@sentry" / "browser" / "package.json"
pytestmark = [
    needs_chromium,
    pytest.mark.skipif(
        not (ESBUILD.exists() and SDK_PACKAGE.exists()),
        reason="needs tests/js/node_modules (npm ci --prefix tests/js; .ci/run does)",
    ),
]

URL_EMAIL = "jane.doe@example.com"  # in the page's query string, the user scope and the error message
PAGE_EMAIL = "john.roe@example.com"  # in the page's text and a mailto: link
TYPED_EMAIL = "jd.typed@example.com"  # typed into an <input>, then shown back in the page
PHONE = "+44 20 7946 0958"  # in the page's text (an Ofcom drama number)
# What must not reach the upstream in any form: the addresses, their local parts (URL-encoded `@` too), the phone
# number's digits as written or run together.
LEAKS = (URL_EMAIL, PAGE_EMAIL, TYPED_EMAIL, "jane.doe", "john.roe", "jd.typed", PHONE, "7946 0958", "79460958")
MIN_REPLAY_DURATION = 5.0  # the SDK sends no replay younger than this (its minReplayDuration, 4999 ms)
# Payloads checked with Sentry's own normalizer (sentry_relay's StoreNormalizer, what Sentry's store endpoint runs on
# error and transaction events). It has no replay_event schema: on the SDK's own replay event it records its replay
# fields as invalid_attribute, so a replay event is held only to the errors the SDK's original already gets. (SDK 11
# sends no transaction item: it streams spans as `span` v2 items, which the normalizer does not take.)
NORMALIZED_TYPES = ("event", "transaction", "replay_event")
SCRUBBING = "[secrets, pii]"  # the default rule packs of a production config

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Your account</title>
<link rel="icon" href="data:,">
<script src="/sentry.js"></script>
<script>
  Sentry.init({
    dsn: %(dsn)s,
    integrations: [Sentry.replayIntegration(%(replay_options)s), Sentry.browserTracingIntegration()],
    replaysSessionSampleRate: 1.0,
    tracesSampleRate: 1.0,
    sendDefaultPii: true,%(init_options)s
  });
  window.initAt = Date.now();
</script>
</head>
<body>
<h1>Your account</h1>
<p id="contact">Signed in as %(page_email)s. Questions? Call us on %(phone)s.</p>
<p><a id="mail" href="mailto:%(page_email)s">Write to us</a></p>
<label>New e-mail address <input id="email" type="email" name="email" autocomplete="off"></label>
<button id="save" type="button">Save</button>
<p id="status"></p>
<script>
  document.getElementById("save").addEventListener("click", () => {
    const address = document.getElementById("email").value;
    console.log("saving the e-mail address", address);
    Sentry.setUser({id: "4711", email: %(url_email)s});
    Sentry.captureException(new Error("failed for " + %(url_email)s));
    document.getElementById("status").textContent = "Could not change your address to " + address;
  });
</script>
</body>
</html>
"""


@dataclass
class Site:
    """The test page's server and the relay it reports to, each on its own real port."""

    origin: str
    relay_origin: str

    @property
    def dsn(self) -> str:
        """The DSN the page's SDK is configured with."""
        return f"{self.relay_origin.replace('://', f'://{KEY}@')}/{PROJECT}"

    @property
    def url(self) -> str:
        """The page, with an e-mail address in its query string as apps put one there."""
        return f"{self.origin}/?email={URL_EMAIL}"


@dataclass
class Sent:
    """What the page's SDK sent to the relay, as the browser put it on the wire."""

    envelopes: list[Envelope]

    def items(self, item_type: str) -> list[tuple[str | None, Item]]:
        """(envelope event_id, item) for every item of a type."""
        return [(e.event_id, i) for e in self.envelopes for i in e.items if i.type == item_type]


@pytest.fixture(scope="module")
def sdk_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The SDK as a CDN-style script (window.Sentry), built from tests/js/sentry.js with esbuild."""
    out = tmp_path_factory.mktemp("bundle") / "sentry.js"
    subprocess.run(
        [str(ESBUILD), "sentry.js", "--bundle", "--format=iife", "--global-name=Sentry", f"--outfile={out}"],
        cwd=JS,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one tab."""
    async with chromium(tmp_path / "profile") as tab:
        yield tab


def sdk_version() -> str:
    """The @sentry/browser version installed from tests/js/package-lock.json."""
    version: str = orjson.loads(SDK_PACKAGE.read_bytes())["version"]
    return version


async def start_site(
    aiohttp_server: Any, upstream: FakeUpstream, bundle: bytes, *, replay_options: str = "", init_options: str = ""
) -> Site:
    """The page's static server, then a scrubbing relay (the production rule packs) that allows only the page's
    origin. `replay_options` and `init_options` are JavaScript spliced into the page's Sentry.init call."""
    settings: dict[str, str] = {}

    async def index(request: web.Request) -> web.Response:
        quoted = {k: orjson.dumps(v).decode() for k, v in (("dsn", settings["dsn"]), ("url_email", URL_EMAIL))}
        html = PAGE % {
            **quoted,
            "page_email": PAGE_EMAIL,
            "phone": PHONE,
            "replay_options": replay_options,
            "init_options": init_options and f"\n    {init_options},",
        }
        return web.Response(text=html, content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        return web.Response(body=bundle, content_type="text/javascript")

    static = web.Application()
    static.router.add_get("/", index)
    static.router.add_get("/sentry.js", script)
    static_server: TestServer = await aiohttp_server(static)
    origin = str(static_server.make_url("")).rstrip("/")
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    upstream_dsn: "{upstream.url.replace("://", f"://{UPSTREAM_KEY}@")}/{UPSTREAM_PROJECT}"
    allowed_origins: ["{origin}"]
"""
    config = make_config(upstream.url, projects=projects, rules=SCRUBBING)
    relay_server: TestServer = await aiohttp_server(create_app(config))
    site = Site(origin, str(relay_server.make_url("")).rstrip("/"))
    settings["dsn"] = site.dsn
    return site


async def use_the_page(page: Page, site: Site) -> str:
    """Open the page, type a new e-mail address and click Save (which logs, sets the user and captures an
    error); once the replay is old enough for the SDK to send it, flush it. The replay id."""
    await page.send("Page.navigate", url=site.url)
    replay_id: str = await page.wait_for(
        "document.readyState === 'complete' && window.Sentry && Sentry.getReplay()?.getReplayId()"
    )
    await page.click("#email")
    await page.type(TYPED_EMAIL)
    await page.click("#save")
    await page.wait_for("document.getElementById('status').textContent")
    age = await page.evaluate("(Date.now() - window.initAt) / 1000")
    await asyncio.sleep(max(0.0, MIN_REPLAY_DURATION + 0.5 - age))
    await page.evaluate("Sentry.getReplay().flush().then(() => true)")
    return replay_id


async def wait_until_received(upstream: FakeUpstream, types: set[str], timeout: float = 30.0) -> None:
    """Poll until the upstream has received at least one item of each type."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not types <= (got := {i.type for r in upstream.received for i in r.envelope.items}):
        if asyncio.get_running_loop().time() > deadline:
            counts = Counter(i.type for r in upstream.received for i in r.envelope.items)
            raise AssertionError(f"upstream got {dict(counts)}, nothing of {sorted(types - got)} after {timeout}s")
        await asyncio.sleep(0.1)


def relay_requests(page: Page, site: Site, method: str = "POST") -> dict[str, dict[str, Any]]:
    """The page's requests to the relay's API with an HTTP method, by request id (CDP requestWillBeSent params)."""
    return {
        p["requestId"]: p
        for p in page.network("requestWillBeSent")
        if p["request"]["url"].startswith(f"{site.relay_origin}/api/") and p["request"]["method"] == method
    }


async def answers(page: Page, request_ids: set[str], timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """Wait until each request has its answer (responseReceived) or its failure (loadingFailed); those events'
    params by request id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = {p["requestId"]: p for p in page.network("responseReceived") + page.network("loadingFailed")}
        if request_ids <= found.keys():
            return {r: found[r] for r in request_ids}
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer to requests {sorted(request_ids - found.keys())}")
        await asyncio.sleep(0.05)


async def sent_by_the_page(page: Page, site: Site) -> Sent:
    """The envelopes the SDK posted to the relay, from the browser's own record of the request bodies."""
    envelopes = []
    for request_id, params in relay_requests(page, site).items():
        request = params["request"]
        body = b"".join(base64.b64decode(entry.get("bytes", "")) for entry in request.get("postDataEntries", []))
        if not body and request.get("hasPostData"):
            data = await page.send("Network.getRequestPostData", requestId=request_id)
            body = base64.b64decode(data["postData"]) if data.get("base64Encoded") else data["postData"].encode()
        envelopes.append(parse_envelope(body))
    return Sent(envelopes)


def upstream_items(upstream: FakeUpstream, item_type: str) -> list[tuple[str | None, Item]]:
    """(envelope event_id, item) for every item of a type the upstream received."""
    return [(r.envelope.event_id, i) for r in upstream.received for i in r.envelope.items if i.type == item_type]


def decode_recording(payload: bytes) -> tuple[dict[str, Any], list[Any]]:
    """A replay_recording payload: its JSON header line, and the rrweb events after it (zlib or plain JSON)."""
    header, newline, body = payload.partition(b"\n")
    assert newline, f"no header line in the recording: {payload[:80]!r}"
    if not body.startswith(b"["):
        body = zlib.decompress(body)
    events = orjson.loads(body)
    assert isinstance(events, list), f"the recording body is not a JSON list: {body[:80]!r}"
    return orjson.loads(header), events


def everything_received(upstream: FakeUpstream) -> str:
    """All the upstream got, as one lower-cased text: request headers, envelope and item headers, payloads, and
    every replay recording decompressed."""
    parts: list[bytes] = []
    for rec in upstream.received:
        parts += [orjson.dumps({str(k): v for k, v in rec.headers.items()}), rec.envelope.serialize()]
        for item in rec.envelope.items:
            if item.type == "replay_recording":
                header, events = decode_recording(item.payload)
                parts += [orjson.dumps(header), orjson.dumps(events)]
    return b"\n".join(parts).decode("utf-8", errors="replace").lower()


def leaks(text: str) -> dict[str, str]:
    """Each planted value found in `text`: how often, and the text around its first occurrence."""
    found = {}
    for needle in LEAKS:
        if (at := text.find(needle.lower())) >= 0:
            found[needle] = f"{text.count(needle.lower())}x, first in ...{text[max(0, at - 60) : at + 60]}..."
    return found


def payload_key(envelope_id: str | None, item: Item) -> tuple[str | None, str, int | None]:
    """What tells an item from the others of its type: its envelope's event id, and a replay event's segment."""
    return envelope_id, item.type, item.json().get("segment_id")


def normalization_errors(normalizer: StoreNormalizer, payload: bytes) -> list[dict[str, Any]]:
    """The `errors` Sentry's own event normalizer records for a JSON payload (it raises on what it rejects)."""
    errors: list[dict[str, Any]] = normalizer.normalize_event(raw_event=payload).get("errors") or []
    return errors


async def assert_cors_allowed(page: Page, site: Site, method: str) -> int:
    """Each request of a method from the page to the relay was answered 200 with headers that let the page go on
    (a preflight) or read the answer, rate limits included (a post). How many there were."""
    requests = relay_requests(page, site, method)
    for request_id, answer in (await answers(page, set(requests))).items():
        assert "response" in answer, f"{method} {requests[request_id]['request']['url']}: {answer}"
        headers = {k.lower(): v for k, v in answer["response"]["headers"].items()}
        assert answer["response"]["status"] == 200, answer["response"]
        assert headers["access-control-allow-origin"] == site.origin
        if method == "OPTIONS":
            assert requests[request_id]["initiator"]["type"] == "preflight"
            assert "POST" in headers["access-control-allow-methods"].split(", ")
            asked = requests[request_id]["request"]["headers"].get("Access-Control-Request-Headers", "x-sentry-auth")
            assert set(asked.lower().split(",")) <= set(headers["access-control-allow-headers"].split(", "))
        else:
            assert {"x-sentry-rate-limits", "retry-after"} <= set(headers["access-control-expose-headers"].split(", "))
    return len(requests)


REPLAY_OPTIONS = {
    "sdk-defaults": "",  # the SDK masks text and inputs in the browser: URLs, the console and attributes remain
    "unmasked": "{maskAllText: false, maskAllInputs: false, blockAllMedia: false}",  # as many apps configure it
}


@pytest.mark.parametrize("replay_options", REPLAY_OPTIONS.values(), ids=REPLAY_OPTIONS.keys())
async def test_replay_error_and_spans_arrive_scrubbed(
    page: Page, upstream: FakeUpstream, aiohttp_server: Any, sdk_bundle: bytes, replay_options: str, tmp_path: Path
) -> None:
    """A real session with Replay: error, replay event, recording and spans arrive, with no planted personal data."""
    site = await start_site(aiohttp_server, upstream, sdk_bundle, replay_options=replay_options)
    replay_id = await use_the_page(page, site)
    try:
        await wait_until_received(upstream, {"event", "replay_event", "replay_recording", "span"})
    finally:
        await page.screenshot(tmp_path / "page.png")
    sent = await sent_by_the_page(page, site)
    for _, item in sent.items("replay_recording")[:1]:
        (tmp_path / "replay_recording_sent.bin").write_bytes(item.payload)  # the SDK's own, for when this fails

    # The error, the replay event and its recording belong together.
    ((error_envelope_id, error_item),) = upstream_items(upstream, "event")
    error = error_item.json()
    assert error["exception"]["values"][-1]["type"] == "Error"
    assert error["tags"]["replayId"] == replay_id
    assert error["sdk"]["version"] == sdk_version()  # the pinned package, not some other copy
    replay_events = upstream_items(upstream, "replay_event")
    recordings = upstream_items(upstream, "replay_recording")
    assert {envelope_id for envelope_id, _ in replay_events} == {replay_id}
    assert {envelope_id for envelope_id, _ in recordings} == {replay_id}
    first = next(item.json() for _, item in replay_events if item.json()["segment_id"] == 0)
    assert (first["replay_id"], first["replay_type"]) == (replay_id, "session")
    assert error["event_id"] == error_envelope_id and error_envelope_id in first["error_ids"]

    # A recording is a JSON header line, then the rrweb events: the SDK's segments, in their order and shape.
    (tmp_path / "replay_recording_received.bin").write_bytes(recordings[0][1].payload)
    sent_recordings = [decode_recording(item.payload) for _, item in sent.items("replay_recording")]
    sent_segments = {header["segment_id"]: events for header, events in sent_recordings}
    got_segments = [decode_recording(item.payload) for _, item in recordings]
    assert got_segments[0][0] == {"segment_id": 0}
    for header, got_events in got_segments:
        sent_events = sent_segments[header["segment_id"]]
        assert [(e["type"], e.get("data", {}).get("source")) for e in got_events] == [
            (e["type"], e.get("data", {}).get("source")) for e in sent_events
        ]
    types = {e["type"] for e in got_segments[0][1]}
    assert {2, 3, 4, 5} <= types, types  # full snapshot, incremental changes, meta (the URL), custom (breadcrumbs)

    # Sentry's own normalizer takes what the relay made of each event, with no complaint the SDK's original had not.
    normalizer = StoreNormalizer(project_id=UPSTREAM_PROJECT)
    originals = {payload_key(envelope_id, item): item for t in NORMALIZED_TYPES for envelope_id, item in sent.items(t)}
    checked = []
    for item_type in NORMALIZED_TYPES:
        for envelope_id, item in upstream_items(upstream, item_type):
            got = normalization_errors(normalizer, item.payload)
            had = normalization_errors(normalizer, originals[payload_key(envelope_id, item)].payload)
            assert [e for e in got if e not in had] == [], f"{item_type}: {got}"
            if item_type != "replay_event":  # (no replay schema: see NORMALIZED_TYPES)
                assert got == [], f"{item_type}: {got}"
            checked.append(item_type)
    assert {"event", "replay_event"} <= set(checked)

    # CORS: the SDK's posts are CORS-simple (no custom headers, text/plain), so the browser sends them without a
    # preflight; each answer must still let the page read it.
    assert await assert_cors_allowed(page, site, "POST") >= 3
    await assert_cors_allowed(page, site, "OPTIONS")
    assert page.problems() == []

    # The page did leak: the SDK sent the planted values (so the check below is not vacuous) ...
    recorded = [orjson.dumps(events) for events in sent_segments.values()]
    sent_text = b"\n".join([e.serialize() for e in sent.envelopes] + recorded).decode(errors="replace").lower()
    planted = {URL_EMAIL, PAGE_EMAIL, TYPED_EMAIL} | ({PHONE} if replay_options else set())  # (masked: page text)
    assert {value for value in planted if value in sent_text} == planted
    # ... and the relay let none of them through, in any item, header or recording.
    assert leaks(everything_received(upstream)) == {}


async def test_a_preflighted_sdk_request_gets_through(
    page: Page, upstream: FakeUpstream, aiohttp_server: Any, sdk_bundle: bytes
) -> None:
    """An SDK whose transport sends a non-safelisted header is preflighted by the browser; the relay allows it."""
    auth = f"Sentry sentry_version=7, sentry_key={KEY}, sentry_client=shop/1.0"
    options = f"transportOptions: {{headers: {{'X-Sentry-Auth': {orjson.dumps(auth).decode()}}}}}"
    site = await start_site(aiohttp_server, upstream, sdk_bundle, init_options=options)
    await page.send("Page.navigate", url=site.url)
    await page.wait_for("document.readyState === 'complete' && !!window.initAt")
    event_id = await page.evaluate("Sentry.captureMessage('preflighted')")
    assert await page.evaluate("Sentry.flush(10000)") is True
    deadline = asyncio.get_running_loop().time() + 15
    while event_id not in {r.envelope.event_id for r in upstream.received}:
        assert asyncio.get_running_loop().time() < deadline, "the preflighted event did not arrive"
        await asyncio.sleep(0.05)

    assert await assert_cors_allowed(page, site, "OPTIONS") >= 1
    assert await assert_cors_allowed(page, site, "POST") >= 1
    assert page.problems() == []
    ((_, item),) = [(e, i) for e, i in upstream_items(upstream, "event") if e == event_id]
    assert item.json()["message"] == "preflighted"
