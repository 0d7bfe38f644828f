"""Sampling decisions: rates, ordered rules, and random numbers every replica derives alike."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relay.config import parse_config
from relay.config.model import SamplingConfig
from relay.sample import decide, random_from_hex, trace_random


def sampling(yaml_block: str) -> SamplingConfig:
    """A project's sampling config, parsed by the real loader."""
    config = parse_config(f"projects:\n  - id: 1\n    keys: [k]\n    sampling:\n{yaml_block}", "t.yml", {})
    sampling = config.projects[0].sampling
    assert sampling is not None
    return sampling


RULES = sampling(
    """      error: 0.25
      transaction: 0.1
      rules:
        - {id: keep-fatal, match: {level: fatal}, rate: 1.0}
        - {id: conn, match: {exception_type: ConnectionError}, rate: 0.01}
        - {id: staging-half, match: {environment: staging}, rate: 0.5}
        - {id: eu-checkout, match: {transaction: "/checkout*", tags: {region: "eu-*"}}, rate: 0.75}
"""
)


def error(**fields: Any) -> dict[str, Any]:
    """An error event with the given top-level fields."""
    return {"level": "error", "environment": "production", **fields}


def test_first_matching_rule_wins() -> None:
    """A fatal ConnectionError in staging is decided by keep-fatal, the first rule that matches."""
    event = error(level="fatal", environment="staging", exception={"values": [{"type": "ConnectionError"}]})
    decision = decide(RULES, "error", 0.99, event, None)
    assert (decision.keep, decision.reason, decision.rate) == (True, "keep-fatal", 1.0)


def test_exception_type_rule_matches_any_exception_in_the_chain() -> None:
    """A chained exception is matched on every type in it."""
    event = error(exception={"values": [{"type": "ConnectionError"}, {"type": "RuntimeError"}]})
    assert decide(RULES, "error", 0.5, event, None).reason == "conn"
    assert not decide(RULES, "error", 0.5, event, None).keep
    assert decide(RULES, "error", 0.005, event, None).keep


def test_category_rate_applies_when_no_rule_matches() -> None:
    """Without a matching rule the category's rate decides, named `category:<name>`."""
    decision = decide(RULES, "error", 0.3, error(), None)
    assert (decision.keep, decision.reason) == (False, "category:error")
    assert decide(RULES, "error", 0.2, error(), None).keep


def test_unconfigured_categories_are_kept() -> None:
    """A category with neither a rate nor a rule is never sampled."""
    config = sampling("      transaction: 0.0\n")
    assert decide(config, "error", 0.999, error(), None).keep


def test_tags_and_globs() -> None:
    """Rules match tags and glob patterns; a missing tag doesn't match."""
    event = {"transaction": "/checkout/pay", "tags": {"region": "eu-west-1"}}
    assert decide(RULES, "transaction", 0.7, event, None).reason == "eu-checkout"
    assert decide(RULES, "transaction", 0.7, {"transaction": "/checkout/pay"}, None).reason == "category:transaction"
    pairs = {"transaction": "/checkout", "tags": [["region", "eu-central-1"]]}
    assert decide(RULES, "transaction", 0.7, pairs, None).reason == "eu-checkout"


def test_trace_rules_read_the_trace_header_first() -> None:
    """Transactions of one trace share the trace header, so a rule on the root's environment decides them all."""
    dsc = {"trace_id": uuid.uuid4().hex, "environment": "staging", "transaction": "/root"}
    child = {"transaction": "/child", "environment": "production"}
    assert decide(RULES, "transaction", 0.4, child, dsc).reason == "staging-half"
    assert decide(RULES, "span", 0.4, None, dsc).reason == "staging-half"


def test_random_comes_from_sample_rand_then_trace_id() -> None:
    """`sample_rand` wins; without it the low 56 bits of the trace id; without a trace, the event context."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    expected = int(trace_id[-14:], 16) / 2**56
    assert trace_random({"trace_id": trace_id, "sample_rand": "0.123456"}, None) == 0.123456
    assert trace_random({"trace_id": trace_id}, None) == expected
    assert trace_random({"trace_id": trace_id, "sample_rand": "1.5"}, None) == expected  # out of range: ignored
    assert trace_random(None, {"contexts": {"trace": {"trace_id": trace_id}}}) == expected
    assert trace_random(None, {}) is None
    assert random_from_hex("not-hex-at-all-here") is None
    assert random_from_hex(str(uuid.UUID(trace_id))) == expected


@given(st.uuids(), st.floats(min_value=0.0, max_value=1.0))
def test_decisions_are_deterministic_and_monotonic(trace: uuid.UUID, rate: float) -> None:
    """The same trace always gets the same answer, and a trace kept at one rate is kept at every higher rate."""
    value = random_from_hex(trace.hex)
    assert value is not None and 0.0 <= value < 1.0
    config = SamplingConfig(rates=(("transaction", rate),))
    first = decide(config, "transaction", value, None, None)
    assert first == decide(config, "transaction", value, None, None)
    if first.keep:
        higher = SamplingConfig(rates=(("transaction", min(1.0, rate + 0.1)),))
        assert decide(higher, "transaction", value, None, None).keep


def test_kept_share_follows_the_rate() -> None:
    """Over many random traces the kept share is close to the rate."""
    config = SamplingConfig(rates=(("transaction", 0.1),))
    values = [random_from_hex(uuid.uuid4().hex) for _ in range(20_000)]
    kept = sum(decide(config, "transaction", v, None, None).keep for v in values if v is not None)
    assert 1_700 < kept < 2_300  # 2,000 expected; the bound is over 7 standard deviations
