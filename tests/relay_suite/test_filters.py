"""Port of getsentry/relay `tests/integration/test_filters.py` as black-box tests of this relay.

Relay source read at commit 369ddf10aa9fb80978efe67b4b899017057d64e4.

Relay runs each test through an external relay and through a processing relay; this relay is the external one.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import projects_yaml, send_event, settle


@pytest.mark.parametrize(
    ("pattern", "should_filter"),
    [("Panic: originalCreateNotification", True), ("Warning", False)],
    ids=["error messages filtered", "error messages not filtered"],
)
async def test_filters_are_applied(
    relay_factory: RelayFactory, upstream: FakeUpstream, pattern: str, should_filter: bool
) -> None:
    """An error-message pattern matching `Panic: originalCreateNotification` drops the event; `Warning` doesn't."""
    client = await relay_factory(projects=projects_yaml(upstream.url, f'filters: {{messages: ["{pattern}"]}}'))
    event = {
        "message": f"some message {datetime.datetime.now(datetime.UTC).isoformat()}",
        "exception": {"values": [{"type": "Panic", "value": "originalCreateNotification"}]},
    }
    assert (await send_event(client, event)).status == 200
    await settle(upstream, 0 if should_filter else 1)


@pytest.mark.parametrize(
    ("event", "must_filter"),
    [
        ({"logentry": {"message": "filter:"}}, False),
        ({"logentry": {"message": "filter:yes"}}, True),
        ({"logentry": {"message": "filter:%s", "params": ["no"]}}, False),
        ({"logentry": {"message": "filter:%s", "params": ["yes"]}}, True),
    ],
    ids=[
        "plain non-matching message",
        "plain matching message",
        "formatting non-matching message",
        "formatting matching message",
    ],
)
async def test_error_message_filters_are_applied(
    relay_factory: RelayFactory, upstream: FakeUpstream, event: dict[str, Any], must_filter: bool
) -> None:
    """The error-message filter `*yes*` matches the logentry, after formatting its params into it."""
    client = await relay_factory(projects=projects_yaml(upstream.url, 'filters: {messages: ["*yes*"]}'))
    assert (await send_event(client, event)).status == 200
    await settle(upstream, 0 if must_filter else 1)


@pytest.mark.parametrize("enable_filters", [False, True], ids=["not filtered", "filtered"])
async def test_browser_extension_filters_are_applied(
    relay_factory: RelayFactory, upstream: FakeUpstream, enable_filters: bool
) -> None:
    """With the browser-extension filter on, an exception with a chrome-extension:// frame is dropped."""
    filters = f"filters: {{browser_extensions: {str(enable_filters).lower()}}}"
    client = await relay_factory(projects=projects_yaml(upstream.url, filters))
    frames = [{"filename": "a/different.file"}, {"filename": "chrome-extension://blablabla"}]
    event = {"exception": {"values": [{"stacktrace": {"frames": frames}}]}}
    assert (await send_event(client, event)).status == 200
    await settle(upstream, 0 if enable_filters else 1)


@pytest.mark.parametrize(("is_enabled", "should_filter"), [(True, True), (False, False)])
async def test_web_crawlers_filter_are_applied(
    relay_factory: RelayFactory, upstream: FakeUpstream, is_enabled: bool, should_filter: bool
) -> None:
    """With the web-crawler filter on, an event from User-Agent BingBot is dropped."""
    client = await relay_factory(
        projects=projects_yaml(upstream.url, f"filters: {{web_crawlers: {str(is_enabled).lower()}}}")
    )
    event = {"message": "some message", "request": {"headers": {"User-Agent": "BingBot"}}}
    assert (await send_event(client, event)).status == 200
    await settle(upstream, 0 if should_filter else 1)
