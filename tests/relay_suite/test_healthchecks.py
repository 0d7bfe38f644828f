"""Port of getsentry/relay `tests/integration/test_healthchecks.py` as black-box tests of this relay.

Relay source read at commit 7f83dcd52731b2f4fe004ad41bc70cd6e0516e74.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import RelayFactory
from .support import RecordingUpstream, projects_yaml


async def test_live(relay_factory: RelayFactory) -> None:
    """The internal liveness endpoint Kubernetes probes answers 200."""
    client = await relay_factory()
    assert (await client.get("/api/relay/healthcheck/live/")).status == 200


async def test_external_live(relay_factory: RelayFactory) -> None:
    """The liveness endpoint a downstream Relay calls answers 200."""
    client = await relay_factory()
    assert (await client.get("/api/0/relays/live/")).status == 200


@pytest.mark.skip(reason="readiness waits for relay registration with Sentry: this relay never registers")
def test_readiness() -> None:
    """Skipped: readiness waits for relay registration with Sentry: this relay never registers."""


async def test_readiness_flag(relay_factory: RelayFactory, aiohttp_server: Any) -> None:
    """Readiness does not depend on the upstream: 200 while every upstream request fails (Relay's `ready: always`)."""
    failing = RecordingUpstream(status=400)
    url = str((await aiohttp_server(failing.app())).make_url("")).rstrip("/")
    client = await relay_factory(projects=projects_yaml(url), upstream_url=url)
    assert (await client.get("/api/relay/healthcheck/ready/")).status == 200


async def test_readiness_proxy(relay_factory: RelayFactory, aiohttp_server: Any) -> None:
    """A relay in proxy mode is ready even though the upstream refuses everything."""
    failing = RecordingUpstream(status=400)
    url = str((await aiohttp_server(failing.app())).make_url("")).rstrip("/")
    client = await relay_factory("unknown_projects: forward", projects="projects: []", upstream_url=url)
    assert (await client.get("/api/relay/healthcheck/ready/")).status == 200
