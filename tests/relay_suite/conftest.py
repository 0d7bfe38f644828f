"""Fixtures for the ported Relay suite: relays built like Relay's `relay(mini_sentry, options)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relay.app import create_app
from relay.config import parse_config

from ..e2e.test_process import start_relay
from ..support import FakeUpstream, config_text
from .support import BASIC_RULES, Client

__all__ = ["start_relay"]

RelayFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def relay_factory(upstream: FakeUpstream, aiohttp_client: Any) -> RelayFactory:
    """Relay's `relay(mini_sentry, options)`: a relay in front of the fake upstream, scrubbing with the pack that
    mirrors mini_sentry's basic piiConfig unless `rules` says otherwise; `extra` is top-level YAML."""

    async def make(
        extra: str = "",
        *,
        rules: str = BASIC_RULES,
        projects: str | None = None,
        upstream_extra: str = "",
        upstream_url: str | None = None,
    ) -> Client:
        if "scrub:" not in extra:  # mini_sentry's piiConfig has no identity rule (user.username and friends)
            extra += "\nscrub: {identity_keys: []}"
        text = config_text(upstream_url or upstream.url, extra, rules=rules, projects=projects)
        if upstream_extra:  # more keys in the `upstream:` block (concurrency, outage, ...)
            text = text.replace("  batch: {linger: 1ms}\n", f"  batch: {{linger: 1ms}}\n  {upstream_extra}\n", 1)
        return await aiohttp_client(create_app(parse_config(text, "test.yml", {})))  # type: ignore[no-any-return]

    return make
