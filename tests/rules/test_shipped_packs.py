"""The `tests:` carried inside every shipped rule pack, each run as its own test through that pack's rules."""

from __future__ import annotations

import copy
import json

import pytest

from relay.rules import RulePack, RuleTest, load_pack, shipped_packs
from relay.rules.verify import strings_in
from relay.scrub.engine import Scrubber

PACKS: dict[str, RulePack] = {name: load_pack(name) for name in shipped_packs()}
CASES = [pytest.param(name, case, id=f"{name}: {case.name}") for name, pack in PACKS.items() for case in pack.tests]


def test_every_shipped_pack_has_tests() -> None:
    """Each shipped pack carries test cases, and the cases have unique names."""
    assert {"secrets", "pii"} <= set(PACKS)
    for name, pack in PACKS.items():
        names = [case.name for case in pack.tests]
        assert names, f"pack {name} has no tests"
        assert len(names) == len(set(names)), f"pack {name} has duplicate test names"


@pytest.mark.parametrize(("pack_name", "case"), CASES)
def test_pack_case(pack_name: str, case: RuleTest) -> None:
    """Scrubbed by its pack alone, the input equals `expect` (sans `_meta`), lacks `absent` and keeps `present`."""
    pack = PACKS[pack_name]
    out = Scrubber(pack.rules, b"pack-test-key").scrub_event(copy.deepcopy(case.input))
    meta = out.pop("_meta", None)
    if case.expect is not None:
        assert out == case.expect, f"{pack.source}:{case.line}: {case.name}"
    strings = strings_in(out)
    text = json.dumps(out, ensure_ascii=False)
    for value in case.absent:
        assert not any(value in s for s in strings), f"{pack.source}:{case.line}: {value!r} survived: {text}"
    for value in case.present:
        assert any(value in s for s in strings), f"{pack.source}:{case.line}: {value!r} missing: {text}"
    if out != case.input:
        assert meta, f"{pack.source}:{case.line}: changes without _meta"


@pytest.mark.parametrize(("pack_name", "case"), CASES)
def test_pack_case_is_idempotent(pack_name: str, case: RuleTest) -> None:
    """Scrubbing a case's output again changes nothing."""
    rules = PACKS[pack_name].rules
    once = Scrubber(rules, b"pack-test-key").scrub_event(copy.deepcopy(case.input))
    twice = Scrubber(rules, b"pack-test-key").scrub_event(copy.deepcopy(once))
    assert twice == once
