"""The rule playground in a real headless Chromium, driven like a person would, over the DevTools protocol.

No browser-automation package: a few lines of CDP over aiohttp's websocket client. The test types or
pastes into the text boxes, picks the project with the keyboard, clicks the button, and reads the
highlighted result and its rule labels from the DOM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from relay.admin import create_admin_app
from relay.config import load_config

from ..browser import CTRL, Page, chromium, needs_chromium
from .test_playground import BROKEN_DRAFT, CARD, CONFIG, DRAFT, EMAIL, EVENT, FRAME, ORDER, ORDERS_PACK, PASSWORD

pytestmark = needs_chromium


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
    async with chromium(tmp_path / "profile") as tab:
        yield tab


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
    await page.press("Enter", modifiers=CTRL)  # Ctrl+Enter in the draft box scrubs too
    await page.wait_for("!document.getElementById('result').hidden")
    await page.screenshot(tmp_path / "draft.png")
    assert await page.evaluate("document.getElementById('error').hidden") is True
    assert ("extra.ticket", "draft.ticket", "masked") in await table(page)
    assert ("**********", "draft.ticket", "draft.ticket") in await marks(page, "after")
    assert ("TICKET-777", "draft.ticket", "draft.ticket") in await marks(page, "before")
    assert (await page.texts("#status"))[0].endswith("rules: secrets, pii, draft.yml")
    assert await page.texts(".draft-mode") == ["added after the project's rules"]
    assert page.problems() == []
