"""A real headless Chromium for tests, driven over the DevTools protocol (CDP) like a person would use it.

No browser-automation package: a few lines of CDP over aiohttp's websocket client. `chromium()` starts
Debian's Chromium with one tab and yields it as a `Page`: send commands, evaluate JavaScript, click, press
keys, type and paste, and read what the page logged and requested.
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

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run does)"
)
CTRL = 2  # the CDP modifier bit for Ctrl
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
_KEYS = {
    "ArrowDown": {"code": "ArrowDown", "windowsVirtualKeyCode": 40},
    "Enter": {"code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    "Tab": {"code": "Tab", "windowsVirtualKeyCode": 9},
    "a": {"code": "KeyA", "windowsVirtualKeyCode": 65},
}


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
        """The value of a JavaScript expression in the page (a promise is awaited)."""
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

    async def type(self, text: str) -> None:
        """Type text into the focused element one key at a time (keydown, input, keyup for each character)."""
        for char in text:
            await self.send("Input.dispatchKeyEvent", type="keyDown", key=char, text=char, unmodifiedText=char)
            await self.send("Input.dispatchKeyEvent", type="keyUp", key=char)

    async def paste_into(self, selector: str, text: str) -> None:
        """Click a text box, select what is in it, and paste `text` over it."""
        await self.click(selector)
        await self.press("a", modifiers=CTRL, commands=("selectAll",))
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
        """Uncaught exceptions, console errors and browser log errors (CSP and CORS violations land there)."""
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

    def network(self, method: str) -> list[dict[str, Any]]:
        """The params of every `Network.<method>` event so far (requestWillBeSent, responseReceived...)."""
        return [e["params"] for e in self.events if e["method"] == f"Network.{method}"]

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its profile in `profile`) with one tab, connected over the DevTools protocol;
    the Page, Runtime, Log and Network domains are enabled. The browser is stopped on the way out."""
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
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []
    try:
        try:
            endpoint = await asyncio.wait_for(_devtools_endpoint(proc.stderr, log), 30)
        except TimeoutError:
            raise AssertionError("Chromium did not start:\n" + "\n".join(log)) from None
        drain = asyncio.get_running_loop().create_task(_drain(proc.stderr), name="chromium-stderr")
        port = int(re.findall(r":(\d+)/", endpoint)[0])
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                target = next(t for t in targets if t["type"] == "page")
                async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    tab = Page(ws)
                    try:
                        for domain in ("Page", "Runtime", "Log", "Network"):
                            await tab.send(f"{domain}.enable")
                        yield tab
                    finally:
                        await tab.close()
        finally:
            drain.cancel()
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
