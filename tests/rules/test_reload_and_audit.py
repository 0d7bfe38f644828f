"""Rules in the running relay: audit mode, redaction metrics, the audit log, and hot reload under load."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from ..conftest import RelayFactory, state_of
from ..e2e.test_process import config_yaml, free_port, start_relay  # noqa: F401 (start_relay is a fixture)
from ..support import FakeUpstream, auth_header, envelope_bytes

OLD = """
pack: acme
rules:
  - id: acme.old
    pattern: 'SECRET-OLD-\\d+'
tests:
  - name: old tokens go
    input: {message: "a SECRET-OLD-1 b"}
    absent: [SECRET-OLD-1]
"""
NEW = OLD.replace(
    "tests:",
    """  - id: acme.new
    pattern: 'SECRET-NEW-\\d+'
tests:
  - name: new tokens go
    input: {message: "SECRET-NEW-7"}
    absent: [SECRET-NEW-7]""",
)
AUDITED = OLD.replace(
    "tests:",
    """  - id: acme.watch
    mode: audit
    pattern: 'SECRET-NEW-\\d+'
tests:""",
)


def event_body(message: str) -> bytes:
    """An envelope with one event carrying `message`."""
    event_id = uuid.uuid4().hex
    payload = orjson.dumps({"event_id": event_id, "message": message, "extra": {"note": message}})
    return envelope_bytes({"event_id": event_id}, ({"type": "event"}, payload))


async def post(client: Any, message: str) -> int:
    """POST one event; the status."""
    resp = await client.post("/api/42/envelope/", data=event_body(message), headers=auth_header())
    return int(resp.status)


def redactions(state: Any) -> dict[tuple[str, str, str], float]:
    """relay_scrub_redactions_total by (project, rule, action)."""
    return {
        (s.labels["project"], s.labels["rule"], s.labels["action"]): s.value
        for m in state.metrics.scrub_redactions.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


def reloads(state: Any) -> dict[str, float]:
    """relay_rules_reload_total by result."""
    return {
        s.labels["result"]: s.value
        for m in state.metrics.rules_reloads.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


async def test_audit_rule_changes_nothing_but_counts_and_logs(
    make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule in audit mode leaves the value, counts `audit:<action>` and logs path and rule, never the value."""
    rules = tmp_path / "acme.yml"
    rules.write_text(AUDITED)
    audit_log = tmp_path / "audit" / "redactions.jsonl"
    client = await make_relay(f"scrub: {{audit_log: '{audit_log}'}}", rules=f"['{rules}']")
    caplog.set_level(logging.INFO, logger="relay.scrub")
    assert await post(client, "x SECRET-OLD-1 y SECRET-NEW-2 z") == 200
    await upstream.wait_for(1)
    event = upstream.items("event")[0].json()
    assert "SECRET-OLD-1" not in orjson.dumps(event).decode()
    assert event["message"] == "x [Filtered] y SECRET-NEW-2 z"  # the audit rule changed nothing
    counts = redactions(state_of(client))
    assert counts[("42", "acme.old", "replace")] == 2
    assert counts[("42", "acme.watch", "audit:replace")] == 2
    logged = [r for r in caplog.records if r.getMessage() == "audit rules would redact"]
    assert len(logged) == 1
    assert "SECRET-NEW-2" not in str(logged[0].__dict__)
    records = [orjson.loads(line) for line in audit_log.read_text().splitlines()]
    assert {(r["path"], r["rule"], r["action"], r["mode"]) for r in records} == {
        ("message", "acme.old", "replace", "enforce"),
        ("extra.note", "acme.old", "replace", "enforce"),
        ("message", "acme.watch", "replace", "audit"),
        ("extra.note", "acme.watch", "replace", "audit"),
    }
    assert all(r["item_type"] == "event" and r["project"] == 42 and len(r["event_id"]) == 32 for r in records)
    assert "SECRET" not in audit_log.read_text()


async def test_reload_swaps_in_new_rules_and_keeps_old_ones_on_error(
    make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A good file is swapped in; a broken file or a failing embedded test leaves the running rules."""
    rules = tmp_path / "acme.yml"
    rules.write_text(OLD)
    client = await make_relay("scrub: {reload_interval: 0s}", rules=f"['{rules}']")
    state = state_of(client)
    reloader = state.reloader
    rules.write_text(NEW)
    assert await reloader.reload("test") is True
    assert await post(client, "SECRET-NEW-5") == 200
    rules.write_text("rules:\n  - id: acme.old\n    pattern: '(unclosed'\n")
    assert await reloader.reload("test") is False
    rules.write_text(NEW.replace("absent: [SECRET-NEW-7]", "present: [SECRET-NEW-7]"))  # a test that fails
    assert await reloader.reload("test") is False
    assert await post(client, "SECRET-NEW-6 SECRET-OLD-6") == 200
    await upstream.wait_for(2)
    messages = [e.json()["message"] for e in upstream.items("event")]
    assert messages == ["[Filtered]", "[Filtered] [Filtered]"]
    assert reloads(state) == {"ok": 1.0, "error": 2.0}
    assert state.ready


async def test_reload_under_load_has_no_window_of_weaker_rules(
    make_relay: RelayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Events flow while the file changes (watched) and then breaks: none fails, none loses the old rules' scrubbing."""
    rules = tmp_path / "acme.yml"
    rules.write_text(OLD)
    client = await make_relay("scrub: {reload_interval: 50ms}", rules=f"['{rules}']")
    state = state_of(client)
    statuses: list[int] = []
    sent = 0
    swapped_at: int | None = None

    async def traffic(stop: asyncio.Event) -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            statuses.append(await post(client, f"n={sent} SECRET-OLD-{sent} SECRET-NEW-{sent}"))

    stop = asyncio.Event()
    sender = asyncio.create_task(traffic(stop))
    await asyncio.sleep(0.3)
    rules.write_text(NEW)
    while reloads(state).get("ok", 0) < 1:
        await asyncio.sleep(0.01)
    swapped_at = sent + 1  # every event sent after the swap was seen uses the new rules
    await asyncio.sleep(0.3)
    rules.write_text("rules: [this is not a rule]\n")
    while reloads(state).get("error", 0) < 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    stop.set()
    await sender
    assert set(statuses) == {200} and sent > 20
    await upstream.wait_for(sent, timeout=30)
    for event in (item.json() for item in upstream.items("event")):
        text = orjson.dumps(event).decode()
        number = int(event["message"].split()[0][2:])
        assert "SECRET-OLD" not in text, f"event {number} kept an old-rule secret"
        if number >= swapped_at:
            assert "SECRET-NEW" not in text, f"event {number}, sent after the swap, kept a new-rule secret"
    assert state.ready


async def test_sighup_reloads_a_running_relay_process(
    start_relay: Any,  # noqa: F811
    upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    """`kill -HUP` makes a real `relay run` process reload its rule files."""
    rules = tmp_path / "acme.yml"
    rules.write_text(OLD)
    port = free_port()
    text = config_yaml(port, upstream.url, spool="memory") + f"rules: ['{rules}']\nscrub: {{reload_interval: 0s}}\n"
    relay = await start_relay(text, port)
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        rules.write_text(NEW)
        relay.proc.send_signal(signal.SIGHUP)
        record = await relay.wait_log("rules reloaded")
        assert record["trigger"] == "SIGHUP" and record["rules"] == 2
        rules.write_text("rules: [")
        relay.proc.send_signal(signal.SIGHUP)
        failed = await relay.wait_log("rules reload failed, the running rules stay in force")
        assert any(str(rules) in problem for problem in failed["problems"])
        async with session.get(f"{relay.url}/readyz") as resp:
            assert resp.status == 200
