"""Key-name patterns are normalized like key names, without changing what their escapes mean."""

from __future__ import annotations

import pytest

from relay.rules.keys import normalize_key, normalize_key_pattern


@pytest.mark.parametrize(
    ("pattern", "normalized"),
    [
        ("API_KEY", "apikey"),
        (r"\S+secret", r"\S+secret"),  # not \s: lowercasing an escape would invert it
        (r"\W", r"\W"),
        (r"a\.b", "ab"),  # a literal dot is a separator, which normalized keys drop
        (r"x\-y", "xy"),
        ("acme.*secret", "acme.*secret"),  # an unescaped dot is regex syntax
    ],
)
def test_normalize_key_pattern(pattern: str, normalized: str) -> None:
    """Separators go, escapes keep their case, regex syntax stays."""
    assert normalize_key_pattern(pattern) == normalized


def test_a_literal_dotted_key_matches_its_normalized_name() -> None:
    """`keys: ['a\\.b']` matches the key `a.b`."""
    import regex

    assert regex.fullmatch(normalize_key_pattern(r"db\.password"), normalize_key("DB.Password"), regex.IGNORECASE)
