"""Port of getsentry/relay `tests/integration/test_proxy.py` as black-box tests of this relay.

Relay source read at commit 18e4d10b8cc041bdccf5acaa22c9df10c2d29035.

Relay's proxy mode forwards every project without a config: here `unknown_projects: forward` with no projects.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import Client, envelope, send_envelope
from .test_replay_events import generate_replay_event


async def proxy_relay(relay_factory: RelayFactory) -> Client:
    """Relay's `relay(mini_sentry, options={"relay": {"mode": "proxy"}})`."""
    return await relay_factory("unknown_projects: forward", projects="projects: []")


def profile_payload(transaction: dict[str, Any]) -> dict[str, Any]:
    """A sample profile of the transaction (Relay's `get_profile_payload`, reduced to its shape)."""
    return {
        "event_id": "41fed0925670468bb0457f61a74688ec",
        "version": "1",
        "platform": "python",
        "timestamp": transaction["start_timestamp"],
        "os": {"name": "Linux", "version": "6.1"},
        "device": {"architecture": "x86_64"},
        "transaction": {
            "id": transaction["event_id"],
            "trace_id": transaction["contexts"]["trace"]["trace_id"],
            "name": transaction["transaction"],
            "active_thread_id": 1,
        },
        "profile": {
            "samples": [{"stack_id": 0, "thread_id": "1", "elapsed_since_start_ns": 1000}],
            "stacks": [[0]],
            "frames": [{"function": "main", "module": "app", "lineno": 1}],
        },
    }


async def test_span_allowed(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """In proxy mode a standalone span is forwarded."""
    client = await proxy_relay(relay_factory)
    end = datetime.now(UTC) - timedelta(seconds=1)
    start = end - timedelta(milliseconds=500)
    span = {
        "description": r"test \" with \" escaped \" chars",
        "op": "default",
        "span_id": "cd429c44b67a3eb1",
        "segment_id": "968cff94913ebb07",
        "start_timestamp": start.timestamp(),
        "timestamp": end.timestamp() + 1,
        "exclusive_time": 345.0,
        "trace_id": "ff62a8b040f340bda5d830223def1d81",
    }
    assert (await send_envelope(client, envelope(("span", json.dumps(span).encode())))).status == 200
    await upstream.wait_for(1)


async def test_profile_allowed(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """In proxy mode a transaction and its profile are forwarded together."""
    client = await proxy_relay(relay_factory)
    end = datetime.now(UTC) - timedelta(seconds=1)
    start = end - timedelta(milliseconds=500)
    transaction = {
        "event_id": "d2132d31b39445f1938d7e21b6bf0ec4",
        "type": "transaction",
        "transaction": "foo",
        "start_timestamp": start.timestamp(),
        "timestamp": end.timestamp(),
        "contexts": {
            "trace": {"trace_id": "1234F60C11214EB38604F4AE0781BFB2", "span_id": "ABCDFDEAD5F74052", "type": "trace"}
        },
    }
    body = envelope(("transaction", transaction), ("profile", profile_payload(transaction)))
    assert (await send_envelope(client, body)).status == 200
    await upstream.wait_for(1)
    assert {item.type for item in upstream.received[0].envelope.items} == {"transaction", "profile"}


async def test_replay_allowed(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """In proxy mode a replay event is forwarded."""
    client = await proxy_relay(relay_factory)
    assert (await send_envelope(client, envelope(("replay_event", generate_replay_event())))).status == 200
    await upstream.wait_for(1)
