"""Port of getsentry/relay `tests/integration/test_dynamic_sampling.py` as black-box tests of this relay.

Relay source read at commit a2715d40fd05a4b8066d3892580d2ff359670ebf.

Relay's sampling rules (`sampleRate`, `strategy: trace|event`) translate to this relay's per-category rates.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..support import KEY, PROJECT, UPSTREAM_KEY, FakeUpstream
from .conftest import RelayFactory
from .support import (
    Client,
    client_reports,
    envelope,
    event_of,
    items,
    message_of,
    payloads,
    projects_yaml,
    report_totals,
    send_envelope,
    settle,
)

OUTCOMES = "outcomes: {client_reports: true, interval: 200ms}"
KEY_43 = "43434343434343434343434343434343"


def transaction_item() -> tuple[dict[str, Any], str]:
    """Relay's `_create_transaction_item`: a transaction and its (random) trace id."""
    trace_id = uuid.uuid4().hex
    item = {
        "event_id": "d2132d31b39445f1938d7e21b6bf0ec4",
        "type": "transaction",
        "transaction": "tr1",
        "start_timestamp": 1597976392.6542819,
        "timestamp": 1597976400.6189718,
        "contexts": {"trace": {"trace_id": trace_id, "span_id": "FA90FDEAD5F74052", "type": "trace"}},
        "spans": [],
    }
    return item, trace_id


def event_item() -> tuple[dict[str, Any], str]:
    """Relay's `_create_event_item`: an event carrying its id in `extra` too."""
    event_id = uuid.uuid4().hex
    return {"event_id": event_id, "message": "Hello, World!", "extra": {"id": event_id}}, event_id


async def send_transaction(
    client: Client, public_key: str = KEY, project: int = PROJECT, key: str = KEY, with_event: bool = False
) -> str:
    """An envelope with a transaction (and an event) whose trace header names `public_key`; the trace id."""
    transaction, trace_id = transaction_item()
    entries: list[tuple[str, Any]] = [("transaction", transaction)]
    if with_event:
        entries.append(("event", {"message": "Hello"}))
    body = envelope(*entries, headers={"trace": {"trace_id": trace_id, "public_key": public_key}})
    assert (await send_envelope(client, body, project=project, key=key)).status == 200
    return trace_id


async def test_it_removes_transactions(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A 0% rate for the trace drops the transaction and reports it as sampled out."""
    client = await relay_factory(OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {transaction: 0.0}"))
    await send_transaction(client)
    reports = await client_reports(upstream)
    assert upstream.items("transaction") == []
    assert sum(q for (_, c), q in report_totals(reports, "filtered_sampling_events").items() if c == "transaction") == 1


async def test_it_keeps_transactions(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A 100% rate for the trace keeps the transaction unchanged, and nothing is reported."""
    client = await relay_factory(OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {transaction: 1.0}"))
    trace_id = await send_transaction(client)
    await upstream.wait_for(1)
    (transaction,) = payloads(upstream, "transaction")
    assert transaction["contexts"]["trace"]["trace_id"] == trace_id
    await asyncio.sleep(0.6)
    assert payloads(upstream, "client_report") == []


async def test_it_removes_events(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A 0% rate for events drops the event and reports it as sampled out."""
    client = await relay_factory(OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {error: 0.0}"))
    event, _ = event_item()
    assert (await send_envelope(client, envelope(("event", event)))).status == 200
    reports = await client_reports(upstream)
    assert upstream.items("event") == []
    assert sum(q for (_, c), q in report_totals(reports, "filtered_sampling_events").items() if c == "error") == 1


async def test_it_keeps_events(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A 100% rate for events keeps the event, and nothing is reported."""
    client = await relay_factory(OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {error: 1.0}"))
    event, event_id = event_item()
    assert (await send_envelope(client, envelope(("event", event)))).status == 200
    await upstream.wait_for(1)
    assert event_of(upstream.received[0])["extra"]["id"] == event_id
    await asyncio.sleep(0.6)
    assert payloads(upstream, "client_report") == []


async def test_uses_trace_public_key(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """The sampling config of the project that started the trace (its public key) decides, not the sender's."""
    dsn_43 = f"{upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/4502"
    others = f"""  - id: 43
    keys: ["{KEY_43}"]
    upstream_dsn: "{dsn_43}"
    sampling: {{transaction: 1.0}}
"""
    client = await relay_factory(
        OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {transaction: 0.0}", others=others)
    )
    await send_transaction(client, public_key=KEY, project=43, key=KEY_43)  # trace of 42: dropped
    await client_reports(upstream)
    assert upstream.items("transaction") == []
    await send_transaction(client, public_key=KEY_43)  # trace of 43: kept
    for _ in range(100):
        if upstream.items("transaction"):
            break
        await asyncio.sleep(0.02)
    assert len(upstream.items("transaction")) == 1


async def test_fast_path(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Transaction-only envelopes are dropped by a 0% trace rate every time."""
    client = await relay_factory(OUTCOMES, projects=projects_yaml(upstream.url, "sampling: {transaction: 0.0}"))
    for sent in range(1, 3):
        await send_transaction(client)
        await client_reports(upstream, at_least=sent)
        assert upstream.items("transaction") == []


async def test_multi_item_envelope(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """In an envelope with a sampled-out transaction and an event, the transaction goes and the event stays."""
    client = await relay_factory(projects=projects_yaml(upstream.url, "sampling: {transaction: 0.0}"))
    for sent in range(1, 3):
        await send_transaction(client, with_event=True)
        await upstream.wait_for(sent)
        rec = upstream.received[-1]
        assert items(rec, "transaction") == []
        assert message_of(event_of(rec)) == "Hello"
    await settle(upstream, 2)
