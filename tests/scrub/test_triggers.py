"""The C family triggers and safe-shape test (`_triggers.h`) give exactly the answers of the Python ones."""

from __future__ import annotations

import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.scrub import detectors
from relay.scrub.detectors import TRIGGERS, Trigger, fold
from relay.scrub.detectors.base import keyword_trigger
from relay.scrub.engine import _SAFE_SHAPE

detectors.activate(set(detectors.KEYWORD_FAMILIES))  # every family's trigger is compared, used or not

try:  # the triggers are functions of the C walk's module
    from relay.scrub import _walker as _triggers
except ImportError:  # not built: the engine uses TRIGGERS itself
    _triggers = None  # type: ignore[assignment]
if os.environ.get("RELAY_PURE_PYTHON"):  # built, but the engine doesn't use it (nor hand it the keywords)
    _triggers = None  # type: ignore[assignment]

built = pytest.mark.skipif(_triggers is None, reason="the C triggers are not built")

# Characters the triggers look at, plus look-alikes: Unicode digits, the Kelvin sign, dotted capital I.
PIECES = st.sampled_from(
    ["@", ":", "::", "://", "-", ".", "/", "(", ")", " ", "/home/", "Users", "Settings", "pass", "PWD", "sEcReT",
     "token", "key", "\u212aey", "auth", "sid", "sİg", "csrf", "bearer", "Basic", "digest", "negotiate", "aws",
     "eyJ", "PRIVATE KEY", "AKIA", "AIza", "ghp_", "github_pat_", "glpat-", "glabcdef-", "xox", "hooks.slack",
     "_live_", "_test_", "whsec_", "ya29.", "GOCSPX-", "sk-", "\u0663", "\uff11", "a446.", "15f0.", "a6cc", "abcde."]
) | st.text(alphabet="0123456789abcdefABCDEF:-. /", min_size=1, max_size=12) | st.text(max_size=4)  # fmt: skip
TEXTS = st.lists(PIECES, max_size=12).map("".join)


def python_bits(text: str, families: tuple[str, ...]) -> int:
    """The Python triggers' answer, as bits in `families` order."""
    return sum(1 << index for index, name in enumerate(families) if TRIGGERS[name](text))


@pytest.mark.skipif(bool(os.environ.get("RELAY_PURE_PYTHON")), reason="RELAY_PURE_PYTHON turns the C parts off")
def test_c_triggers_are_built() -> None:
    """`pip install -e .` builds the C triggers, for every family the Python triggers know."""
    assert _triggers is not None
    assert set(detectors.FAMILIES) == set(TRIGGERS)
    assert detectors.FAMILIES[: len(_triggers.FAMILIES)] == _triggers.FAMILIES


@built
@settings(max_examples=3000, deadline=None)
@given(text=TEXTS)
@example(text="12345:ab:cd:")
@example(text="00-11-22-33-44-5")
@example(text="glabcde-")
@example(text="1 2 3 4 5 6 7")
@example(text="\u0661\u0662\u0663-\u0664\u0665\u0666-7")
def test_c_triggers_agree_with_python(text: str) -> None:
    """On any text, each family's C trigger fires exactly when its Python trigger does."""
    assert _triggers is not None
    assert _triggers.fired(text) == python_bits(text, detectors.FAMILIES)


SHAPES = st.lists(
    st.sampled_from(["2024", "-", "05", "01", "T", " ", "10", ":", "00", ".", ",", "123456789", "0123456789", "Z",
                     "+", "02", "\u0663", "a", "f", "F", "0", "12345678", "1234", "123456789012", "x"]),
    max_size=12,
).map("".join)  # fmt: skip


@built
@settings(max_examples=3000, deadline=None)
@given(text=SHAPES | st.uuids().map(str) | st.text(max_size=8))
@example(text="2024-05-01T10:00:00.123456789+02:00")
@example(text="2024-05-01 10:00:00,1234567890Z")
@example(text="2024-05-01+0200")
@example(text="-123456.5")
@example(text="1234567")
@example(text="\u0661\u0662.\u0663")
def test_c_safe_shape_agrees_with_python(text: str) -> None:
    """The C safe-shape test fullmatches exactly where the engine's `_SAFE_SHAPE` regex does."""
    assert _triggers is not None
    assert _triggers.safe_shape(text) == (_SAFE_SHAPE.fullmatch(text) is not None)


# Keywords as the keyword families give them: ASCII and not, folded (lower case) and exact, with letters whose
# lowercase is special (the dotted capital I, the Kelvin sign, final sigma) and pairs that share a bucket.
KEYWORDS = st.lists(
    st.sampled_from(["passwort", "pass", "mot_de_passe", "contraseña", "hasło", "şifre", "пароль", "パスワード",
                     "密码", "npm_", "pypi-AgEI", "SG.", "hf_", "xoxe", "ki", "σς", "dob", "né le"]),
    min_size=1, max_size=6, unique=True,
)  # fmt: skip
KEYWORD_TEXTS = st.lists(
    st.sampled_from(["PASSWORT", "Pass", "pa", "ss", "MOT_DE_PASSE", "CONTRASEÑA", "HASŁO", "ŞİFRE", "Şifre",
                     "ПАРОЛЬ", "パスワード", "密码", "NPM_", "npm_", "pypi-agei", "pypi-AgEI", "sg.", "SG.", "HF_",
                     "\u212a", "KI", "\u0130", "ΣΣ", "σς", "Né LE", "DOB", " ", "x", "_"]) | st.text(max_size=3),
    max_size=10,
).map("".join)  # fmt: skip


@built
@settings(max_examples=1500, deadline=None)
@given(keywords=KEYWORDS, exact=st.lists(st.booleans(), min_size=6, max_size=6), text=KEYWORD_TEXTS)
@example(keywords=["ki"], exact=[False] * 6, text="\u212a\u0130")
def test_c_keyword_triggers_agree_with_python(keywords: list[str], exact: list[bool], text: str) -> None:
    """A keyword family's C trigger fires exactly when its Python trigger (keywords in the folded text) does."""
    assert _triggers is not None
    families = []
    for index, word in enumerate(keywords):
        folded = not exact[index]
        families.append((1 << (10 + index), (fold(word) if folded else word,), folded))
    try:
        _triggers.set_keywords(tuple(families))
        expected = 0
        for bit, words, folded in families:
            if keyword_trigger(Trigger(keywords=words, fold=folded))(text):
                expected |= bit
        assert _triggers.fired(text) >> 10 == expected >> 10
    finally:
        detectors.install_keywords()


@built
def test_set_keywords_checks_its_arguments() -> None:
    """Bad keyword tables are refused with a clear error, and the running table is kept."""
    assert _triggers is not None
    before = _triggers.fired("x passwort y")
    for bad in [
        None,
        ((1, ("ab",), True),),
        ((1 << 40, ("a",), True),),
        ((1 << 40, "ab", True),),
        ((3 << 40, ("ab",), True),),
    ]:
        with pytest.raises((TypeError, ValueError)):
            _triggers.set_keywords(bad)  # type: ignore[arg-type]
    assert _triggers.fired("x passwort y") == before
