"""Sentry's fingerprinting rules text (`error.type:DatabaseError -> database-error`), read into our rules.

Used by `relay rules import-sentry-fingerprints FILE`, which prints the `fingerprints:` YAML to paste
into a project (or the top level) of the relay's config.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ..config import FingerprintMatcher, FingerprintRule
from ..config.filters import fingerprint_value, matcher_key

_MATCHER = re.compile(r'\s*(!?)([A-Za-z0-9_.-]+|"[A-Za-z0-9_.:-]+"):("(?:[^"\\]|\\.)*"|\S+)')
_VALUE = re.compile(
    r'\s*(?:([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*")|("(?:[^"\\]|\\.)*")|(\{\{\s*\S+\s*\}\}|[^\s{,]+))\s*,?'
)


class FingerprintSyntaxError(ValueError):
    """A line that can't be read or expressed; carries every problem as `file:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_fingerprinting(text: str, source: str = "<text>") -> list[FingerprintRule]:
    """Every rule of a Sentry fingerprinting config; FingerprintSyntaxError lists all problems."""
    rules: list[FingerprintRule] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rules.append(_rule(line, f"{source}:{number}"))
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
    if problems:
        raise FingerprintSyntaxError(problems)
    return rules


def _rule(line: str, where: str) -> FingerprintRule:
    left, arrow, right = line.partition("->")
    if not arrow:
        raise ValueError("expected `matcher:value ... -> fingerprint`, found no `->`")
    matchers: list[FingerprintMatcher] = []
    pos = 0
    left = left.rstrip()
    while pos < len(left):
        match = _MATCHER.match(left, pos)
        if match is None:
            raise ValueError(f"can't read a matcher at {left[pos:].strip()!r} (expected key:value)")
        negated, key, argument = match.groups()
        matchers.append(FingerprintMatcher(matcher_key(key.strip('"')), _unquote(argument), bool(negated)))
        pos = match.end()
    if not matchers:
        raise ValueError("a rule needs at least one matcher before `->`")
    values: list[str] = []
    pos = 0
    right = right.strip()
    while pos < len(right):
        match = _VALUE.match(right, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"can't read a fingerprint value at {right[pos:]!r}")
        attribute, _, quoted, plain = match.groups()
        if attribute is not None:
            raise ValueError(
                f"the `{attribute}=` attribute can't be applied by a relay (Sentry sets issue titles on its side); "
                "remove it, or keep this rule in Sentry"
            )
        values.append(fingerprint_value(_unquote(quoted) if quoted is not None else plain))
        pos = match.end()
    if not values:
        raise ValueError("a rule needs at least one fingerprint value after `->`")
    return FingerprintRule(tuple(matchers), tuple(values), False, where)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def to_yaml(rules: list[FingerprintRule], source: str) -> str:
    """The `fingerprints:` config block for these rules."""
    data: list[dict[str, Any]] = []
    for rule in rules:
        entry: dict[str, Any] = {
            "match": {("!" if m.negated else "") + m.key: m.pattern for m in rule.matchers},
            "fingerprint": list(rule.fingerprint),
        }
        data.append(entry)
    header = (
        f"# Converted from {source} by `relay rules import-sentry-fingerprints`.\n"
        "# Paste under a project (or at the top level) of the relay's config. First match wins;\n"
        "# a fingerprint the SDK set is kept unless a rule says `override: true`.\n"
    )
    return header + yaml.safe_dump({"fingerprints": data}, sort_keys=False, allow_unicode=True, width=120)


def run_import_fingerprints(args: argparse.Namespace) -> int:
    """`relay rules import-sentry-fingerprints FILE`: print (or write) the converted rules."""
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        rules = parse_fingerprinting(text, args.file)
    except FingerprintSyntaxError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing written", file=sys.stderr)
        return 1
    output = to_yaml(rules, args.file)
    if args.output == "-":
        sys.stdout.write(output)
    else:
        Path(args.output).write_text(output, encoding="utf-8")
        print(f"wrote {len(rules)} rule(s) to {args.output}", file=sys.stderr)
    return 0


__all__ = ["FingerprintSyntaxError", "parse_fingerprinting", "run_import_fingerprints", "to_yaml"]
