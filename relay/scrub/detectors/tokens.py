"""Vendor tokens that identify themselves (a prefix, a fixed shape), kept as data: the table in tokens.yml.

Each row of the table is one format: its keywords, pattern, optional checksum, and a positive and a
near-miss example (templates the tests expand). At import the rows are compiled into:

- one keyword family, `vendor_token`, woken by the rows' keywords (case-sensitive, as the prefixes are);
- one detector, `vendor_token` (rule `secrets.vendor_tokens`), whose pattern is every row in one
  alternation, grouped by first character behind a single "not after a letter or digit" guard.

One detector rather than one per row: the engine joins a family's detectors into one alternation with a
named group per detector, and those groups defeat the regex engine's first-character skip, so 110 per-row
detectors cost ~20 ms per 2 KB string the trigger wakes, against ~0.1 ms for this one alternation (and
the trigger wakes it on ~0.15% of the bench corpus's strings). The audit reports the rule; `identify`
tells which row a token is (for tools and the tests).

Checksums (GitHub/npm CRC32, Grafana CRC32, age's bech32, PyPI's macaroon, base64 JSON payloads) are in
the table and tested, but a failed check does not spare a match: every compiled row has a distinctive
prefix, so a format match is already strong evidence, and a token with a broken checksum is a mistyped or
truncated real one as often as a fake. Weak shapes that would need a check to be precise (Vault's legacy
`s.` tokens, Airtable's `pat`, GoCardless's `live_`) are left to the key=value and key-name rules.

Rows marked `covered_by` are formats a built-in detector already scrubs (GitHub, GitLab, Slack, Stripe,
Google, OpenAI/Anthropic/OpenRouter `sk-`): they document the format and are tested through the engine,
but add no pattern. The module also has `aws_secret_access_key`: AWS secret keys after their label in
any case or separator (`awsSecretAccessKey: ...`, `"SecretAccessKey": "..."`, `<SecretAccessKey>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from ...errors import RelayError
from .base import Detector, Trigger, keyword_trigger
from .builtin import DETECTORS as BUILTIN_DETECTORS
from .checksums import CHECKSUMS

FAMILY = "vendor_token"
TABLE_FILE = "tokens.yml"
_GUARD_BEFORE = "(?<![A-Za-z0-9_])"
_GUARD_AFTER = "(?![A-Za-z0-9_])"
_ID = re.compile(r"[a-z][a-z0-9_]*")
_ROW_KEYS = ("id", "vendor", "description", "keywords", "pattern", "labels", "checksum", "covered_by", "example",
             "near_miss")  # fmt: skip
_REQUIRED = ("id", "vendor", "description", "keywords", "pattern", "example", "near_miss")


class TokenTableError(RelayError):
    """The token table is malformed; the message lists every problem, each with its dotted path."""


@dataclass(frozen=True, slots=True)
class TokenFormat:
    """One self-identifying token format: a row of tokens.yml."""

    id: str
    vendor: str
    description: str
    keywords: tuple[str, ...]
    pattern: str  # the token alone, as the table writes it
    example: str  # templates: see tokens.yml
    near_miss: str
    labels: tuple[str, ...] = ()  # literals right before the token, not replaced
    checksum: str = ""  # a name in checksums.CHECKSUMS
    covered_by: str = ""  # a built-in detector that already scrubs it

    @property
    def source(self) -> str:
        """The row's regex as compiled: labels as lookbehinds, the guards around the token."""
        before = _GUARD_BEFORE
        if self.labels:
            before = "(?:" + "|".join(f"(?<={re.escape(label)})" for label in self.labels) + ")"
        return f"{before}(?:{self.pattern}){_GUARD_AFTER}"

    @property
    def regex(self) -> re.Pattern[str]:
        """The row's compiled regex (matches the token only)."""
        return _compiled(self.source)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(source: str) -> re.Pattern[str]:
    pattern = _CACHE.get(source)
    if pattern is None:
        pattern = _CACHE[source] = re.compile(source)
    return pattern


def parse_table(raw: Any, source: str = TABLE_FILE) -> tuple[str, tuple[TokenFormat, ...]]:
    """The placeholder and rows of a token table (parsed YAML); every problem at once as TokenTableError."""
    problems: list[str] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        raise TokenTableError(f"{source}: expected a mapping with `placeholder` and a `tokens` list")
    placeholder = raw.get("placeholder")
    if not isinstance(placeholder, str) or not placeholder:
        problems.append(f'{source}: placeholder: expected a string like "[Filtered]"')
    rows: list[TokenFormat] = []
    seen: set[str] = set()
    for index, item in enumerate(raw["tokens"]):
        where = f"{source}: tokens[{index}]"
        row = _parse_row(item, where, problems)
        row_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(row_id, str) and row_id in seen:
            problems.append(f"{where}.id: {row_id!r} is defined twice")
        seen.add(str(row_id))
        if row is not None:
            rows.append(row)
    if problems:
        raise TokenTableError("\n".join(problems))
    assert isinstance(placeholder, str)
    return placeholder, tuple(rows)


def _parse_row(item: Any, where: str, problems: list[str]) -> TokenFormat | None:
    """One row, or None with its problems appended."""
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a mapping (start it with `- id: ...`)")
        return None
    before = len(problems)
    unknown = sorted(set(item) - set(_ROW_KEYS))
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(_ROW_KEYS)}")
    for key in _REQUIRED:
        if key not in item:
            problems.append(f"{where}.{key}: required")
    if len(problems) > before:
        return None
    strings = {key: item[key] for key in ("id", "vendor", "description", "pattern", "example", "near_miss")}
    strings.update({key: item.get(key, "") for key in ("checksum", "covered_by")})
    for key, value in strings.items():
        if not isinstance(value, str):
            problems.append(f"{where}.{key}: expected a string, got {value!r}")
    lists = {key: item.get(key, []) for key in ("keywords", "labels")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(word, str) and len(word) >= 2 for word in value):
            problems.append(f"{where}.{key}: expected a list of strings of two characters or more")
    if len(problems) > before:
        return None
    row = TokenFormat(
        id=item["id"], vendor=item["vendor"], description=item["description"], keywords=tuple(item["keywords"]),
        pattern=item["pattern"], example=item["example"], near_miss=item["near_miss"], labels=tuple(lists["labels"]),
        checksum=strings["checksum"], covered_by=strings["covered_by"],
    )  # fmt: skip
    _check_row(row, where, problems)
    return row if len(problems) == before else None


def _check_row(row: TokenFormat, where: str, problems: list[str]) -> None:
    """What is wrong with a row's values, appended to `problems`."""
    if not _ID.fullmatch(row.id):
        problems.append(f"{where}.id: {row.id!r}: use snake_case (a-z, 0-9, _)")
    if not row.keywords:
        problems.append(f"{where}.keywords: at least one")
    if row.checksum and row.checksum not in CHECKSUMS:
        problems.append(f"{where}.checksum: {row.checksum!r}: one of {', '.join(CHECKSUMS)}")
    if row.covered_by and row.covered_by not in BUILTIN_DETECTORS:
        problems.append(f"{where}.covered_by: {row.covered_by!r} is no built-in detector")
    try:
        compiled = re.compile(row.pattern)
        re.compile(row.source)
    except re.error as exc:
        problems.append(f"{where}.pattern: {exc}")
        return
    if compiled.groupindex:
        problems.append(f"{where}.pattern: no named groups (write (?:...))")


def load_table() -> tuple[str, tuple[TokenFormat, ...]]:
    """The shipped token table (package data)."""
    text = resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return parse_table(yaml.safe_load(text))


def _first_literal(pattern: str) -> str:
    """The pattern's first character when every match begins with it (a plain letter, digit or _)."""
    if not (pattern[:1].isalnum() or pattern[:1] == "_") or pattern[1:2] in ("?", "*", "+", "{"):
        return ""
    depth, escaped, in_class = 0, False, False
    for ch in pattern:  # a top-level | would start an alternative without it
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0:
            return ""
    return pattern[0]


def combined_source(rows: tuple[TokenFormat, ...]) -> str:
    """One regex for every row: one guard, then the rows grouped by first character, then the rest.

    Grouping by a literal first character lets the regex engine reject most positions in one comparison
    per group instead of entering every row; a row's labels are looked behind for only after its first
    character. Labelled rows with a leading class are grouped by the label's last character (one
    look-behind fails most positions), and other rows with a leading class come last.
    """
    groups: dict[str, list[str]] = {}
    labelled: dict[str, list[str]] = {}
    rest: list[str] = []
    for row in rows:
        body = f"(?:{row.pattern}){_GUARD_AFTER}"
        first = _first_literal(row.pattern)
        tail = f"(?:{row.pattern[1:]}){_GUARD_AFTER}"
        for label in row.labels:
            if first:
                groups.setdefault(first, []).append(f"(?<={re.escape(label + first)}){tail}")
            else:
                labelled.setdefault(label[-1], []).append(f"(?<={re.escape(label)}){body}")
        if row.labels:
            continue
        if first:
            groups.setdefault(first, []).append(tail)
        else:
            rest.append(body)
    parts = [f"{re.escape(first)}(?:{'|'.join(bodies)})" for first, bodies in sorted(groups.items())]
    parts += [f"(?<={re.escape(last)})(?:{'|'.join(bodies)})" for last, bodies in sorted(labelled.items())]
    return f"{_GUARD_BEFORE}(?:{'|'.join(parts + rest)})"


PLACEHOLDER, TABLE = load_table()
COMPILED_ROWS = tuple(row for row in TABLE if not row.covered_by)
KEYWORDS = tuple(dict.fromkeys(word for row in COMPILED_ROWS for word in row.keywords))


def identify(token: str) -> TokenFormat | None:
    """The first compiled row whose pattern matches all of `token`, or None."""
    for row in COMPILED_ROWS:
        if re.fullmatch(f"(?:{row.pattern})", token):
            return row
    return None


# AWS secret access keys after their label, in any case and separator: awsSecretAccessKey: ...,
# AWS_SECRET_ACCESS_KEY=..., "SecretAccessKey": "...", <SecretAccessKey>...; only the key is replaced.
# One separator throughout (the backreference) and ASCII case only, so every label folds to a keyword.
_AWS_LABEL_WORDS = ("secretaccesskey", "secret_access_key", "secret-access-key", "secret access key")
_AWS_LABEL = re.compile(
    r"(?ai:secret(?P<sep>[ _-]?)access(?P=sep)key)\\?[\"']?\s*(?:=>|:=|[:=>])\s*\\?[\"']?"
    r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
AWS_FAMILY = "aws_secret_label"

TRIGGERS: dict[str, Trigger] = {
    FAMILY: Trigger(keywords=KEYWORDS, fold=False),
    AWS_FAMILY: Trigger(keywords=_AWS_LABEL_WORDS, fold=True),
}
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "vendor_token", PLACEHOLDER, re.compile(combined_source(COMPILED_ROWS)), keyword_trigger(TRIGGERS[FAMILY]),
        family=FAMILY,
    ),
    Detector(
        "aws_secret_access_key", "[Filtered]", _AWS_LABEL, keyword_trigger(TRIGGERS[AWS_FAMILY]), family=AWS_FAMILY
    ),
)  # fmt: skip
