"""Sampling on malformed events and trace headers: no rule raises, and over HTTP the answer is a 200."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.config import parse_config
from relay.config.model import SamplingConfig
from relay.sample import decide, random_from_hex, sampler, trace_random

from ..conftest import RelayFactory, state_of
from ..filter.hostile_events import DEEP, HUGE_INT, events, junk, rule_failures
from ..support import KEY, OTHER_KEY, UPSTREAM_KEY, FakeUpstream, auth_header, envelope_bytes, outcome_totals

SAMPLING = """      error: 1.0
      rules:
        - {id: by-level, match: {level: fatal}, rate: 0.0}
        - {id: by-environment, match: {environment: staging}, rate: 0.0}
        - {id: by-release, match: {release: "1.*"}, rate: 0.0}
        - {id: by-transaction, match: {transaction: "/t*"}, rate: 0.0}
        - {id: by-exception, match: {exception_type: "*Error"}, rate: 0.0}
        - {id: by-tag, match: {tags: {region: "eu-*"}}, rate: 0.0}
"""


def sampling(yaml_block: str) -> SamplingConfig:
    """A project's sampling config, parsed by the real loader."""
    config = parse_config(f"projects:\n  - id: 1\n    keys: [k]\n    sampling:\n{yaml_block}", "t.yml", {})
    found = config.projects[0].sampling
    assert found is not None
    return found


RULES = sampling(SAMPLING)
traces = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "trace_id": junk,
            "sample_rand": st.one_of(st.just(HUGE_INT), junk),
            **{k: junk for k in ("environment", "release", "transaction")},
        },
    ),
    junk,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, traces, st.sampled_from(["error", "transaction", "span", "default", "security"]))
def test_sampling_never_raises_on_malformed_events(event: dict[str, Any], trace: Any, category: str) -> None:
    """Every sampling rule, and the random numbers, are read from any event and trace header without raising."""
    with rule_failures("relay.sample") as failures:
        value = trace_random(trace, event)
        assert value is None or 0.0 <= value < 1.0
        from_id = random_from_hex(event.get("event_id"))
        assert from_id is None or 0.0 <= from_id < 1.0
        decision = decide(RULES, category, 0.5 if value is None else value, event, trace)
        assert decision.reason in ("", f"category:{category}", *(rule.id for rule in RULES.rules))
    assert failures == []


def test_an_int_too_large_for_a_float_is_no_sample_rand() -> None:
    """`sample_rand` past the float range is ignored; the trace id decides."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    assert trace_random({"sample_rand": HUGE_INT, "trace_id": trace_id}, None) == int(trace_id[-14:], 16) / 2**56


def test_a_sampling_rule_that_raises_does_not_match(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule whose matching raises is passed over (logged by id and exception type, never data); the next decides."""
    real = sampler._matches

    def flaky(rule: Any, category: str, event: Any, trace: Any) -> bool:
        if rule.id == "by-level":
            raise TypeError("secret-payload-text")
        return real(rule, category, event, trace)

    monkeypatch.setattr(sampler, "_matches", flaky)
    with caplog.at_level(logging.DEBUG, logger="relay.sample"):
        decision = decide(RULES, "error", 0.5, {"level": "fatal", "environment": "staging"}, None)
    assert decision.reason == "by-environment"
    record = next(r for r in caplog.records if r.getMessage().startswith("rule failed"))
    assert (record.__dict__["rule"], record.__dict__["error"], record.__dict__["stage"]) == (
        "by-level",
        "TypeError",
        "sampling",
    )
    assert all("secret-payload-text" not in str(value) for value in record.__dict__.values())


async def test_unprintable_tags_are_sampled_without_a_500(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An event whose tag is nested a thousand deep: the tag rule doesn't match, the event is kept, 200."""
    projects = f"""
projects:
  - id: 42
    keys: ["{KEY}", "{OTHER_KEY}"]
    upstream_dsn: "{upstream.url.replace("://", f"://{UPSTREAM_KEY}@")}/4501"
    sampling:
{SAMPLING}"""
    client = await make_relay(projects=projects)
    deep = b"[" * DEEP + b"]" * DEEP
    event = b'{"message": "hi", "level": "error", "tags": [["region", ' + deep + b'], {"a": ' + deep + b"}]}"
    body = envelope_bytes({"event_id": "b" * 32}, ({"type": "event"}, event))
    resp = await client.post("/api/42/envelope/", data=body, headers=auth_header())
    assert resp.status == 200, await resp.text()
    await upstream.wait_for(1)
    assert outcome_totals(state_of(client)) == {("forwarded", "none", "error"): 1}
