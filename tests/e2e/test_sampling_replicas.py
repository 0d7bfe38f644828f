"""Sampling across replicas: two `python -m relay run` processes keep or drop every trace alike.

Two real sentry-python clients (one `sentry_sdk.Client` each, bound to its own isolation scope and thread)
continue the same traces and send them through different relay processes to one fake upstream.
"""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import sentry_sdk
from prometheus_client.parser import text_string_to_metric_families

from ..support import KEY, OTHER_KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, Received
from . import test_process
from .test_process import RelayProcess, free_port
from .test_sentry_sdk import SdkRecorder

start_relay = test_process.start_relay  # the fixture that runs `python -m relay run` processes in tmp_path

RATE = 0.5
TRACES_PER_VARIANT = 200
# Variants of the incoming trace the SDKs continue, by what their baggage carries:
#   rand        sentry-sample_rand: the relay must compare it with the rate;
#   no-rand     sentry-sample_rate=0.0 with a sampled sentry-trace, so the SDK can't backfill a sample_rand and
#               the envelope's trace header has none: the relay must fall back to the trace id's low 56 bits;
#   backfilled  no sample_rand, but a sample_rate: the SDK derives one from the trace id (seeded by it, so both
#               clients agree) and sends it.
VARIANTS = ("rand", "no-rand", "backfilled")


def replica_config(port: int, upstream_url: str) -> str:
    """The config both replicas share (only the port differs): transactions sampled at RATE, memory spool."""
    dsn = f"{upstream_url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: {upstream_url}
  timeout: 10s
  retry: {{initial: 10ms, max: 50ms, max_elapsed: 30s}}
  batch: {{linger: 1ms}}
shutdown_timeout: 10s
log: {{level: info, format: json}}
rules: []
spool: {{backend: memory}}
projects:
  - id: {PROJECT}
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{dsn}"
    sampling: {{transaction: {RATE}}}
"""


@dataclass(frozen=True)
class Trace:
    """An incoming trace an SDK continues."""

    variant: str
    trace_id: str
    sample_rand: str | None

    def headers(self) -> dict[str, str]:
        """The `sentry-trace` and `baggage` headers of the incoming request (a fresh parent span each time)."""
        baggage = f"sentry-trace_id={self.trace_id}"
        if self.variant == "rand":
            baggage += f",sentry-sample_rate=1.0,sentry-sample_rand={self.sample_rand}"
        elif self.variant == "no-rand":
            baggage += ",sentry-sample_rate=0.0"
        else:
            baggage += ",sentry-sample_rate=1.0"
        return {"sentry-trace": f"{self.trace_id}-{uuid.uuid4().hex[:16]}-1", "baggage": baggage}


def make_traces(seed: int) -> list[Trace]:
    """TRACES_PER_VARIANT traces of each variant, from a seeded generator (the same every run)."""
    rng = random.Random(seed)
    traces = []
    for variant in VARIANTS:
        for _ in range(TRACES_PER_VARIANT):
            trace_id = f"{rng.getrandbits(128):032x}"
            sample_rand = f"{rng.randrange(1_000_000) / 1_000_000:.6f}" if variant == "rand" else None
            traces.append(Trace(variant, trace_id, sample_rand))
    return traces


def send_traces(dsn: str, name: str, traces: list[Trace]) -> SdkRecorder:
    """One SDK client (its own Client and transport) continues each trace and sends one transaction for it."""
    client = sentry_sdk.Client(
        dsn=dsn,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
        send_client_reports=False,
        transport_queue_size=len(traces) + 100,
        server_name=name,
    )
    recorder = SdkRecorder()
    recorder.attach(client.transport)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            for trace in traces:
                transaction = sentry_sdk.continue_trace(trace.headers(), op="task", name=f"{trace.variant}")
                assert transaction.trace_id == trace.trace_id
                with sentry_sdk.start_transaction(transaction):
                    transaction.set_tag("sent_by", name)
        client.flush(timeout=60)
    finally:
        client.close(timeout=10)
    return recorder


def low_56_bits(trace_id: str) -> float:
    """The number the relay samples a trace by when its header has no sample_rand."""
    return int(trace_id[-14:], 16) / (1 << 56)


async def scrape_outcomes(session: aiohttp.ClientSession, relay: RelayProcess) -> Counter[tuple[str, str, str]]:
    """relay_outcomes_total from a relay process's /metrics, by (outcome, reason, category)."""
    async with session.get(f"{relay.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    totals: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "relay_outcomes_total":
                labels = sample.labels
                totals[(labels["outcome"], labels["reason"], labels["category"])] += int(sample.value)
    return totals


def forwarded_by(upstream: FakeUpstream) -> dict[str, dict[str, set[str]]]:
    """Upstream transactions as {sent_by: {variant: trace ids}}."""
    found: dict[str, dict[str, set[str]]] = {}
    for rec in upstream.received:
        for item in rec.envelope.items:
            if item.type == "transaction":
                tx = item.json()
                variants = found.setdefault(tx["tags"]["sent_by"], {})
                variants.setdefault(tx["transaction"], set()).add(tx["contexts"]["trace"]["trace_id"])
    return found


def relay_reported(received: list[Received]) -> Counter[tuple[str, str]]:
    """The relays' own client reports (sentry_client=relay): sampled-out quantities by (reason, category)."""
    totals: Counter[tuple[str, str]] = Counter()
    for rec in received:
        if "sentry_client=relay" not in rec.headers["X-Sentry-Auth"]:
            continue
        for item in rec.envelope.items:
            if item.type == "client_report":
                for entry in item.json().get("filtered_sampling_events", ()):
                    totals[(entry["reason"], entry["category"])] += entry["quantity"]
    return totals


async def test_replicas_keep_the_same_traces(start_relay: Any, upstream: FakeUpstream) -> None:
    """Two relay processes at transaction rate 0.5 forward the same traces, about half, by sample_rand or trace id."""
    port_a, port_b = free_port(), free_port()
    while port_b == port_a:
        port_b = free_port()
    relay_a = await start_relay(replica_config(port_a, upstream.url), port_a)
    relay_b = await start_relay(replica_config(port_b, upstream.url), port_b)
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(relay_a.wait_ready(session), relay_b.wait_ready(session))

        traces = make_traces(seed=20240601)
        # The clients run at once, in their own threads, with different keys and in different orders.
        recorder_a, recorder_b = await asyncio.gather(
            asyncio.to_thread(send_traces, f"http://{KEY}@127.0.0.1:{port_a}/{PROJECT}", "a", traces),
            asyncio.to_thread(send_traces, f"http://{OTHER_KEY}@127.0.0.1:{port_b}/{PROJECT}", "b", traces[::-1]),
        )
        outcomes = {"a": await scrape_outcomes(session, relay_a), "b": await scrape_outcomes(session, relay_b)}

    # Each relay drains what it accepted before it exits.
    for relay in (relay_a, relay_b):
        code, _ = await relay.stop(signal.SIGTERM, timeout=20)
        assert code == 0, "\n".join(relay.raw)
        stopped = relay.log("relay stopped")
        assert stopped is not None and stopped["lost_envelopes"] == 0, relay.raw

    # What the SDKs put on the wire: every transaction, answered 200 (sampling is invisible to the SDK).
    sent_rand: dict[str, dict[str, str | None]] = {}
    for name, recorder in (("a", recorder_a), ("b", recorder_b)):
        assert len(recorder.responses) == len(traces)
        assert {status for status, _ in recorder.responses} == {200}
        sent_rand[name] = {}
        for envelope in recorder.sent_envelopes():
            assert [i.type for i in envelope.items] == ["transaction"]
            trace_header = envelope.headers["trace"]
            sent_rand[name][trace_header["trace_id"]] = trace_header.get("sample_rand")
        assert len(sent_rand[name]) == len(traces)
    assert sent_rand["a"] == sent_rand["b"], "both SDKs must put the same sample_rand (or none) on each trace"

    forwarded = forwarded_by(upstream)
    total_kept = 0
    for variant in VARIANTS:
        ids = [t for t in traces if t.variant == variant]
        via_a = forwarded.get("a", {}).get(variant, set())
        via_b = forwarded.get("b", {}).get(variant, set())
        assert via_a == via_b, f"{variant}: the replicas disagree on {sorted(via_a ^ via_b)[:5]}"
        assert 60 <= len(via_a) <= 140, f"{variant}: kept {len(via_a)} of {len(ids)} at rate {RATE}"
        if variant == "rand":
            assert all(sent_rand["a"][t.trace_id] == t.sample_rand for t in ids)
            expected = {t.trace_id for t in ids if float(t.sample_rand or "1") < RATE}
        elif variant == "no-rand":
            assert all(sent_rand["a"][t.trace_id] is None for t in ids), "the SDK backfilled a sample_rand"
            expected = {t.trace_id for t in ids if low_56_bits(t.trace_id) < RATE}
        else:
            assert all(sent_rand["a"][t.trace_id] is not None for t in ids)
            expected = {t.trace_id for t in ids if float(sent_rand["a"][t.trace_id] or "1") < RATE}
        assert via_a == expected, f"{variant}: kept traces don't follow the sampling rule"
        total_kept += len(via_a)

    # Each transaction arrived once, and every drop is counted: in /metrics (scraped once the SDKs had their
    # answers, which come after the sampling decision) and in the relays' client reports (flushed at shutdown).
    transactions = [i for r in upstream.received for i in r.envelope.items if i.type == "transaction"]
    assert len(transactions) == 2 * total_kept
    dropped = len(traces) - total_kept
    for name in ("a", "b"):
        assert outcomes[name][("filtered_sampling", "category:transaction", "transaction")] == dropped
    assert relay_reported(upstream.received) == {("category:transaction", "transaction"): 2 * dropped}
