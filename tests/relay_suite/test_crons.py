"""Port of getsentry/relay `tests/integration/test_crons.py` as black-box tests of this relay.

Relay source read at commit d88be2d0985c180ad8921168963bf25d45f36162.

The older name of `test_monitors.py`; the endpoint tests read Kafka there and the upstream here.
"""

from __future__ import annotations

import pytest

from ..support import FakeUpstream
from .conftest import RelayFactory
from .test_monitors import NIL, check_in, cron_get, cron_post_basic, cron_post_embedded

OK = {"check_in_id": NIL, "monitor_slug": "my-monitor", "status": "ok"}


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_monitors_with_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


async def test_crons_endpoint_get_with_processing(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A GET check-in with the key in the path is 202 and becomes a check-in with the nil id."""
    client = await relay_factory()
    assert await cron_get(client) == 202
    assert await check_in(upstream) == OK


async def test_crons_endpoint_post_auth_basic_with_processing(
    relay_factory: RelayFactory, upstream: FakeUpstream
) -> None:
    """A POST check-in authenticated with Basic credentials is 202 and becomes a check-in."""
    client = await relay_factory()
    assert await cron_post_basic(client) == 202
    assert await check_in(upstream) == OK


async def test_crons_endpoint_embedded_auth_with_processing(
    relay_factory: RelayFactory, upstream: FakeUpstream
) -> None:
    """A POST check-in with the key in the path is 202 and becomes a check-in."""
    client = await relay_factory()
    assert await cron_post_embedded(client) == 202
    assert await check_in(upstream) == OK
