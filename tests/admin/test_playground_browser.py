"""The rule playground in a real headless Chromium, driven like a person would, over the DevTools protocol.

No browser-automation package: a few lines of CDP over aiohttp's websocket client. The test types or
pastes into the text boxes, picks the project with the keyboard, clicks the button, and reads the
highlighted result and its rule labels from the DOM.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from relay.admin import create_admin_app
from relay.config import load_config

from .test_playground import BROKEN_DRAFT, CARD, CONFIG, DRAFT, EMAIL, EVENT, FRAME, ORDER, ORDERS_PACK, PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)"
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
_KEYS = {
    "ArrowDown": {"code": "ArrowDown", "windowsVirtualKeyCode": 40},
    "Enter": {"code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    "a": {"code": "KeyA", "windowsVirtualKeyCode": 65},
}
_CTRL = 2


class Page:
    """One browser tab over a CDP websocket: commands, events, and a person's clicks and keys."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="cdp-reader")

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = orjson.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)
        for future in self._pending.values():
            future.set_exception(ConnectionError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a CDP command; return its result."""
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send_str(orjson.dumps({"id": command_id, "method": method, "params": params}).decode())
        reply = await asyncio.wait_for(future, 15)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until the expression is truthy; return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (value := await self.evaluate(expression)):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.05)
        return value

    async def click(self, selector: str) -> None:
        """Move the mouse to the middle of an element and click it."""
        x, y = await self.evaluate(
            f"(() => {{ const e = document.querySelector({orjson.dumps(selector).decode()});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def press(self, key: str, modifiers: int = 0, commands: tuple[str, ...] = ()) -> None:
        """Press and release a key."""
        spec = {"key": key, **_KEYS[key]}
        down = {**spec, "commands": list(commands)} if commands else spec
        await self.send("Input.dispatchKeyEvent", type="keyDown", modifiers=modifiers, **down)
        up = {k: v for k, v in spec.items() if k != "text"}
        await self.send("Input.dispatchKeyEvent", type="keyUp", modifiers=modifiers, **up)

    async def paste_into(self, selector: str, text: str) -> None:
        """Click a text box, select what is in it, and paste `text` over it."""
        await self.click(selector)
        await self.press("a", modifiers=_CTRL, commands=("selectAll",))
        await self.send("Input.insertText", text=text)

    async def texts(self, selector: str) -> list[str]:
        """The text of every element matching a selector."""
        found: list[str] = await self.evaluate(
            f"[...document.querySelectorAll({orjson.dumps(selector).decode()})].map(e => e.textContent)"
        )
        return found

    async def screenshot(self, path: Path) -> None:
        """Save what the page looks like (kept in the test's tmp dir, for when it fails)."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and browser log errors (CSP violations land there)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                if not (entry.get("source") == "network" and "status of 400" in entry.get("text", "")):
                    found.append(f"log: {entry.get('text')}")  # (a 400 is the API's answer to bad input)
        return found

    def requested(self) -> list[str]:
        """Every URL the page asked the network for."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def playground(tmp_path: Path, aiohttp_server: Any) -> str:
    """The admin app on a real local port; its URL."""
    (tmp_path / "orders.yml").write_text(ORDERS_PACK)
    (tmp_path / "relay.yml").write_text(CONFIG)
    server: TestServer = await aiohttp_server(create_admin_app(load_config(tmp_path / "relay.yml")))
    return str(server.make_url("/"))


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one tab, connected over the DevTools protocol."""
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",  # tests may run as root in a container, where Chromium's sandbox can't start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--disable-background-networking",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1400,1000",
        "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []
    try:
        endpoint = await asyncio.wait_for(_devtools_endpoint(proc.stderr, log), 30)
        drain = asyncio.get_running_loop().create_task(_drain(proc.stderr), name="chromium-stderr")
        port = int(re.findall(r":(\d+)/", endpoint)[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tab = Page(ws)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await tab.send(f"{domain}.enable")
                yield tab
                await tab.close()
        drain.cancel()
    except TimeoutError:
        raise AssertionError("Chromium did not start:\n" + "\n".join(log)) from None
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _devtools_endpoint(stderr: asyncio.StreamReader, log: list[str]) -> str:
    while line := await stderr.readline():
        text = line.decode(errors="replace").rstrip()
        log.append(text)
        if found := _LISTENING.search(text):
            return found.group(1)
    raise AssertionError("Chromium exited:\n" + "\n".join(log))


async def _drain(stderr: asyncio.StreamReader) -> None:
    while await stderr.readline():
        pass


async def open_playground(page: Page, url: str) -> None:
    """Load the page and wait until the project list has arrived."""
    await page.send("Page.navigate", url=url)
    await page.wait_for(
        "document.readyState === 'complete' && document.querySelectorAll('#project option').length === 3"
    )


async def marks(page: Page, pane: str) -> list[tuple[str, str, str]]:
    """(highlighted text, data-rule, the label shown next to it) for each redaction highlighted in a pane."""
    found: list[list[str]] = await page.evaluate(
        f"[...document.querySelectorAll('#{pane} mark.redaction')]"
        ".map(m => [m.textContent, m.dataset.rule, m.nextElementSibling.textContent])"
    )
    return [(text, rule, label) for text, rule, label in found]


async def table(page: Page) -> set[tuple[str, ...]]:
    """(path, rule, action) of each row of the redactions table."""
    rows: list[list[str]] = await page.evaluate(
        "[...document.querySelectorAll('#redactions tr')].map(r => [...r.cells].slice(0, 3).map(c => c.textContent))"
    )
    return {tuple(row) for row in rows}


async def test_scrub_an_event_with_a_projects_rules(page: Page, playground: str, tmp_path: Path) -> None:
    """Paste an event, pick project 42, click Scrub: each redaction is highlighted and labelled with its rule."""
    await open_playground(page, playground)
    assert await page.texts("#project option") == [
        "Top-level rules (no project)",
        "Project 42",
        "Project 43 (disabled)",
    ]
    assert await page.texts("#project-rules") == ["Rule packs: secrets, pii"]

    await page.paste_into("#event", orjson.dumps(EVENT, option=orjson.OPT_INDENT_2).decode())
    await page.click("#project")  # then choose with the keyboard, as a person would
    await page.press("ArrowDown")
    await page.press("Enter")
    assert await page.evaluate("document.getElementById('project').value") == "42"
    assert await page.texts("#project-rules") == ["Rule packs: secrets, pii, ./orders.yml"]

    await page.click("#scrub")
    status = await page.wait_for("(s => s.includes('redaction') && s)(document.getElementById('status').textContent)")
    await page.screenshot(tmp_path / "playground.png")
    assert status == "4 redactions · rules: secrets, pii, ./orders.yml"
    assert await table(page) == {
        ("message", "pii.credit_card", "replaced"),
        ("message", "orders.number", "replaced"),
        (f"{FRAME}.vars.to", "pii.email", "replaced"),
        (f"{FRAME}.vars.password", "secrets.sensitive_keys", "replaced"),
    }
    assert await marks(page, "after") == [
        ("[creditcard]", "pii.credit_card", "pii.credit_card"),
        ("[order]", "orders.number", "orders.number"),
        ("[email]", "pii.email", "pii.email"),
        ("[Filtered]", "secrets.sensitive_keys", "secrets.sensitive_keys"),
    ]
    # The pasted event is the user's own, on localhost: the before pane shows what was caught.
    assert await marks(page, "before") == [
        (CARD, "pii.credit_card", "pii.credit_card"),
        (ORDER, "orders.number", "orders.number"),
        (EMAIL, "pii.email", "pii.email"),
        (PASSWORD, "secrets.sensitive_keys", "secrets.sensitive_keys"),
    ]
    after = (await page.texts("#after"))[0]
    assert '"message": "payment failed for card [creditcard]pii.credit_card on order [order]orders.number"' in after
    assert '"to": "\'[email]pii.email\'"' in after
    assert "_meta" not in after
    assert await page.evaluate("document.getElementById('error').hidden") is True

    origin = playground.rstrip("/")
    assert page.requested(), "no requests seen"
    assert all(url.startswith(origin) or url.startswith("data:") for url in page.requested()), page.requested()
    assert page.problems() == []


async def test_draft_rules_and_mistakes(page: Page, playground: str, tmp_path: Path) -> None:
    """Invalid JSON and a broken draft show clear messages; a fixed draft's rule shows up labelled."""
    await open_playground(page, playground)
    await page.paste_into("#event", '{"message": "x",}')
    await page.click("#scrub")
    detail = await page.wait_for(
        "!document.getElementById('error').hidden && document.getElementById('error-detail').textContent"
    )
    assert detail == "event: not valid JSON: trailing comma is not allowed (line 1, column 16)"
    assert await page.evaluate("document.getElementById('result').hidden") is True

    await page.paste_into("#event", orjson.dumps(EVENT).decode())
    await page.paste_into("#draft", BROKEN_DRAFT)
    await page.click("#scrub")
    await page.wait_for("document.querySelectorAll('#problems li').length === 2")
    assert await page.texts("#error-detail") == ["the draft rule file has 2 problems"]
    problems = await page.texts("#problems li")
    assert problems[0].startswith("draft.yml:3:") and "rule draft.ticket: invalid pattern" in problems[0]
    assert "rule draft.other: unknown detector 'no_such_detector'" in problems[1]

    await page.paste_into("#draft", DRAFT)
    await page.press("Enter", modifiers=_CTRL)  # Ctrl+Enter in the draft box scrubs too
    await page.wait_for("!document.getElementById('result').hidden")
    await page.screenshot(tmp_path / "draft.png")
    assert await page.evaluate("document.getElementById('error').hidden") is True
    assert ("extra.ticket", "draft.ticket", "masked") in await table(page)
    assert ("**********", "draft.ticket", "draft.ticket") in await marks(page, "after")
    assert ("TICKET-777", "draft.ticket", "draft.ticket") in await marks(page, "before")
    assert (await page.texts("#status"))[0].endswith("rules: secrets, pii, draft.yml")
    assert await page.texts(".draft-mode") == ["added after the project's rules"]
    assert page.problems() == []
