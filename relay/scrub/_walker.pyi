"""Type stub for the scrub engine's C part (_walker.c, _compute.c, _spans.c, _scans.c, _validators.c, _triggers.c)."""

from collections.abc import Callable
from typing import Any

FAMILIES: tuple[str, ...]

def set_keywords(families: tuple[tuple[int, tuple[str, ...], bool], ...], /) -> None:
    """The keyword families `fired` reports after the built-in ones: (bit, keywords, fold) each."""

def fired(text: str, /) -> int:
    """The bits (in FAMILIES order) of the families whose trigger fires on `text`."""

def safe_shape(text: str, /) -> bool:
    """Whether engine._SAFE_SHAPE fullmatches `text` (a timestamp, a UUID or a short number)."""

def configure_validators(
    *,
    fallbacks: dict[str, Callable[[str], bool]],
    iban_lengths: dict[str, int],
    country_codes: frozenset[str],
    imei_bodies: frozenset[str],
    card_groupings: set[tuple[int, ...]],
) -> None:
    """Hand the C validators validators.py's tables, and its functions for text that isn't ASCII."""

def credit_card_valid(text: str) -> bool: ...
def iban_valid(text: str) -> bool: ...
def ssn_valid(text: str) -> bool: ...
def imei_valid(text: str) -> bool: ...
def phone_valid(text: str) -> bool: ...
def ipv4_public_or_private(text: str) -> bool: ...
def next_start(family: int, text: str, pos: int, high: int) -> int:
    """Where a match of the family (numeric, words or token bit) can begin in [pos, high), or -1."""

def may_begin(family: int, text: str, at: int) -> bool:
    """False only where no detector of the family (words or token bit) can match at that candidate."""

def next_run(text: str, pos: int) -> tuple[int, int] | None:
    """The next run of detectors._NUMERIC_RUN at or after pos."""

def worth_scanning(text: str, start: int, end: int) -> bool:
    """detectors._numeric_run_worth_scanning."""

class Walker:
    def __init__(
        self,
        *,
        owner: object,
        child: Callable[..., Any],
        scrub_string: Callable[..., Any],
        redact_whole: Callable[..., Any],
        scrub_number: Callable[..., Any],
        enter: Callable[[int], None],
        checkpoint: Callable[[], None],
        reset: Callable[[], None],
        unchanged: object,
        max_cached: int,
        cache_limit: int,
        max_depth: int,
        pause: bool,
        yield_gil: Callable[[], None],
        result: Callable[..., Any],
        key_rule: Callable[..., Any],
        apply: Callable[..., Any],
        template: Any,
        key_value: Any,
        first_key_value: Any,
    ) -> None: ...
    def walk(
        self, value: Any, plan: Any, path: list[str], meta: dict[str, Any] | None, depth: int, key: str | None
    ) -> Any:
        """Scrubber._value, in C: the value to keep."""
    def gather(self, on: bool) -> None:
        """Note, while walking, the strings as the walk leaves them (for seen())."""
    def seen(self, found: dict[str, Any]) -> bool | None:
        """Whether a value of found is in a string the walk left; None when it can't tell."""
    def compute(self, text: str, plan: Any) -> Any:
        """Scrubber._compute_python, in C, for a plan with a spec: the _Result."""
