"""Running the `tests:` a rule file carries: the check a reload must pass before its rules go live."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

from ..scrub.engine import Scrubber, ScrubError
from .model import RulePack, RuleTest

TEST_HASH_KEY = b"rule-pack-tests"


def pack_scrubber(pack: RulePack) -> Scrubber:
    """The pack's rules alone, audit-mode rules enforced (a test shows what a rule does once it is)."""
    return Scrubber([dataclasses.replace(r, audit=False) if r.audit else r for r in pack.rules], TEST_HASH_KEY, 5.0)


def run_case(scrubber: Scrubber, case: RuleTest) -> tuple[Any, list[str]]:
    """Scrub a test's input; return the output (without `_meta`) and what is wrong with it (empty: passed)."""
    problems: list[str] = []
    try:
        if isinstance(case.input, dict):
            out: Any = scrubber.scrub_event(copy.deepcopy(case.input))
            out.pop("_meta", None)
        elif isinstance(case.input, str):
            out = scrubber.scrub_text(case.input, "message")
        else:
            out = scrubber.scrub(copy.deepcopy(case.input))
    except ScrubError as exc:
        return None, [f"scrubbing failed: {exc}"]
    if case.expect is not None and out != case.expect:
        problems.append("the output differs from `expect`")
    strings = strings_in(out)
    problems += [f"{value!r} is still in the output" for value in case.absent if any(value in s for s in strings)]
    problems += [
        f"{value!r} is missing from the output" for value in case.present if not any(value in s for s in strings)
    ]
    return out, problems


def verify_packs(packs: Sequence[RulePack]) -> list[str]:
    """Every failing test of these packs, as `file:line: test <name>: problem`."""
    failures: list[str] = []
    for pack in packs:
        scrubber = pack_scrubber(pack)
        for case in pack.tests:
            _, problems = run_case(scrubber, case)
            failures += [f"{pack.source}:{case.line}: test {case.name}: {problem}" for problem in problems]
    return failures


def strings_in(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


__all__ = ["TEST_HASH_KEY", "pack_scrubber", "run_case", "strings_in", "verify_packs"]
