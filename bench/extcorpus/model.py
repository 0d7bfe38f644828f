"""What the corpus is made of: labeled values (to be scrubbed) and decoys (to be kept)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

# Where a value can be written into an event (see placement.py).
FREE_TEXT = "free_text"  # messages, exception values, breadcrumb messages, log bodies
KEY_VALUE = "key_value"  # extra, tags, user, contexts, frame vars, breadcrumb data, log attributes
URL = "url"  # query strings, paths, userinfo
SQL = "sql"  # query breadcrumbs and db span descriptions
HEADER = "header"  # request headers
KEY_NAME = "key_name"  # the value used as an object key
PLACEMENTS = (FREE_TEXT, KEY_VALUE, URL, SQL, HEADER, KEY_NAME)
LABELED = (FREE_TEXT, KEY_VALUE, URL, SQL, HEADER)  # every placement where a label can stand next to it


@dataclass(frozen=True, slots=True)
class Value:
    """One value to plant (or, with `decoy`, to keep).

    `label` is the name an application would give it (a key, column or query parameter). A `weak` value
    (names, addresses, dates of birth, all-digit identifiers) is only written next to its label, as real
    applications do: `ssn: 123456789`, `{"bsn": "..."}`. `context`, if set, is the text written in free
    text instead of the bare value (a gitleaks match around a secret); it must contain `text`.
    """

    kind: str
    text: str
    region: str
    label: str
    source: str
    weak: bool = False
    decoy: bool = False
    context: str | None = None
    placements: tuple[str, ...] = PLACEMENTS

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError(f"{self.kind}: empty value")
        if self.context is not None and self.text not in self.context:
            raise ValueError(f"{self.kind}: context does not contain the value")
        if not set(self.placements) <= set(PLACEMENTS):
            raise ValueError(f"{self.kind}: unknown placement in {self.placements}")


def shannon_entropy(text: str) -> float:
    """Bits per character (gitleaks' entropy measure)."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def sub_rng(seed: int, name: str) -> random.Random:
    """An independent, deterministic random stream per source, so adding one source leaves the others alone."""
    return random.Random(f"{seed}:{name}")
