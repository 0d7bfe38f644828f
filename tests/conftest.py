"""Fixtures: a fake upstream server and relay clients built from config text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.app import create_app
from relay.ingest import STATE, RelayState
from relay.scrub import detectors

from .support import FakeUpstream, make_config

RelayFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

# Tests that call `detectors.fired` directly expect every keyword family's trigger, used by a rule or not.
detectors.activate(set(detectors.KEYWORD_FAMILIES))


@pytest.fixture
async def upstream(aiohttp_server: Any) -> FakeUpstream:
    """A running fake upstream."""
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def make_relay(upstream: FakeUpstream, aiohttp_client: Any) -> RelayFactory:
    """Build a relay test client whose config points at the fake upstream; `extra` adds YAML."""

    async def make(extra: str = "", **kwargs: Any) -> TestClient[Any, Any]:
        config = make_config(upstream.url, extra, **kwargs)
        return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]

    return make


def state_of(client: TestClient[Any, Any]) -> RelayState:
    """The relay state behind a test client."""
    return client.app[STATE]
