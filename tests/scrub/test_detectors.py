"""Golden tests for every built-in detector: what each must catch, and the near-misses it must not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.scrub.detectors import DETECTORS, builtin, secret_words

GOLDEN: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "detectors_golden.yml").read_text())

CATCH = [(name, text, part) for name, cases in GOLDEN.items() for text, part in cases["catch"]]
MISS = [(name, text) for name, cases in GOLDEN.items() for text in cases["miss"]]


def test_every_detector_has_golden_cases() -> None:
    """Each detector of builtin and secret_words has positives and near-misses (the other detector modules'
    tests hold theirs: tests/scrub/detectors)."""
    assert set(GOLDEN) == set(builtin.DETECTORS) | {d.name for d in secret_words.DETECTORS}
    for name, cases in GOLDEN.items():
        assert cases["catch"] and cases["miss"], name


@pytest.mark.parametrize(("name", "text", "part"), CATCH)
def test_detector_catches(name: str, text: str, part: str) -> None:
    """The detector finds exactly the sensitive part."""
    found = [text[a:b] for a, b in DETECTORS[name].find(text)]
    assert part in found, f"{name} found {found} in {text!r}"


@pytest.mark.parametrize(("name", "text"), MISS)
def test_detector_ignores_near_miss(name: str, text: str) -> None:
    """Look-alikes are left alone."""
    found = [text[a:b] for a, b in DETECTORS[name].find(text)]
    assert found == [], f"{name} wrongly found {found} in {text!r}"
