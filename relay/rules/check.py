"""`relay rules check`: every problem in rule files as `file:line:column: rule <id>: message`, then a summary.

Errors are what stops relay from loading a file; warnings are legal rules that probably don't do what
their author meant. Files given together are checked as one rule set, as a config would use them:
ids must be unique across them, and a `keep` rule in one can silence a detector in another.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from .loader import (
    PackReport,
    Problem,
    RuleError,
    inspect_pack,
    quoted,
    resolve_pack_path,
    shipped_packs,
    suggest,
)
from .model import ActionType, Rule
from .selectors import SEP, SelectorError, expand
from .selectors import _split as split_selector
from .yamlpos import position_of

# What can come first in a selector: the fields of a Sentry event, and the roots of other item types.
EVENT_FIELDS = (
    "event_id", "level", "fingerprint", "culprit", "transaction", "transaction_info", "logger", "modules",
    "platform", "timestamp", "start_timestamp", "received", "server_name", "release", "dist", "environment",
    "user", "request", "contexts", "breadcrumbs", "exception", "stacktrace", "template", "threads", "tags",
    "extra", "debug_meta", "sdk", "errors", "type", "message", "logentry", "spans", "measurements",
    "breakdowns", "csp", "hpkp", "expectct", "expectstaple", "version", "project", "checksum",
)  # fmt: skip
ITEM_ROOTS = ("@attachment", "@check_in", "@envelope", "@item", "@log", "@profile", "@security", "@session",
              "@sessions", "@span", "@trace_metric", "@user_report")  # fmt: skip
_ANY = "\x01"  # stands for "any key" when testing whether one selector covers another
_MAX_NAMED = 5
_VALID_ID = regex.compile(r"[A-Za-z0-9_.:@-]+")
# Longer and more varied probes than the loader's quick ones: runs of one or two of the pattern's own
# characters. A linear pattern scans 2 KB in microseconds; one that needs 50 ms is backtracking.
_PROBE_SIZE = 2048
_PROBE_LIMIT = 0.05
_PROBE_BASE = ("a", "A", "0", " ", ".", "-", "_", "@", ":", "/", "=", ",")
_META = set("\\()[]{}|*+?^$")


@dataclass(frozen=True, slots=True)
class RuleFile:
    """One file to check or test: how to show its path, and what loading it found (None: unreadable)."""

    display: str
    report: PackReport | None
    failure: str = ""  # why it could not be read


def run_check(paths: list[str]) -> int:
    """Check rule files or packs (default: the shipped packs); 0 clean or warnings, 1 errors, 2 unreadable."""
    files = read_rule_files(paths)
    problems = check_files(files)
    unreadable = [f for f in files if f.report is None]
    for file in unreadable:
        print(file.failure)
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems) + len(unreadable)
    warnings = len(problems) - sum(p.severity == "error" for p in problems)
    print(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {_count(len(files), 'file')}")
    if unreadable:
        return 2
    return 1 if errors else 0


def read_rule_files(names: list[str]) -> list[RuleFile]:
    """Read and compile each named pack or file (a directory means its *.yml files), never raising."""
    files: list[RuleFile] = []
    for name in names or shipped_packs():
        if Path(name).is_dir():
            found = sorted(p for p in Path(name).iterdir() if p.suffix in (".yml", ".yaml"))
            files.extend(_read(str(p), str(p)) for p in found)
            continue
        try:
            path = resolve_pack_path(name)
        except RuleError as exc:
            files.append(RuleFile(name, None, exc.problems[0]))
            continue
        shipped = not ("/" in name or "\\" in name or name.endswith((".yml", ".yaml")))
        files.append(_read(str(path), _shown(path) if shipped else name))
    return files


def _read(path: str, display: str) -> RuleFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return RuleFile(display, None, f"{display}: cannot read rule file: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return RuleFile(display, None, f"{display}: cannot read rule file: not UTF-8 text")
    return RuleFile(display, inspect_pack(text, display, Path(path).stem))


def _shown(path: Path) -> str:
    """A shipped pack's path as its editor would see it: relative to here if it is below here."""
    real = path.resolve()
    try:
        return str(real.relative_to(Path.cwd()))
    except ValueError:
        return str(real)


def check_files(files: list[RuleFile]) -> list[Problem]:
    """Every problem in these files, checked together as one rule set, in file and line order."""
    problems: list[Problem] = []
    everyone: list[tuple[Rule, RuleFile]] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for file in files:
        report = file.report
        if report is None:
            continue
        found = list(report.problems)
        found.extend(_selector_warnings(file.display, report))
        for rule_id in dict.fromkeys(rule_id for rule_id, _ in report.raw_rules):  # even rules with errors
            earlier = first_seen.get(rule_id)
            if earlier is not None and earlier[0] != file.display:
                line, column = report.position(rule_id, "id")
                message = f"duplicate id: {earlier[0]}:{earlier[1]} already has a rule {rule_id}; ids must be unique"
                found.append(Problem(file.display, line, column, f"rule {rule_id}", message + " across packs"))
            if _VALID_ID.fullmatch(rule_id):
                first_seen.setdefault(rule_id, (file.display, report.position(rule_id, "id")[0]))
        for rule in report.compiled.rules if report.compiled is not None else ():
            found.extend(_pattern_warnings(file.display, report, rule))
            everyone.append((rule, file))
        problems.extend(_unique(sorted(found, key=lambda p: (p.line, p.column))))
    problems.extend(_shadow_warnings(everyone))
    order = {file.display: index for index, file in enumerate(files)}
    return sorted(problems, key=lambda p: (order.get(p.source, 0), p.line, p.column))


def _unique(problems: Iterable[Problem]) -> Iterator[Problem]:
    seen: set[Problem] = set()
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            yield problem


def _pattern_warnings(source: str, report: PackReport, rule: Rule) -> list[Problem]:
    if rule.pattern is None:
        return []
    slow = slow_probe(rule.pattern)
    if slow is None:
        return []
    line, column = report.position(rule.id, "pattern", line=rule.line)
    message = (
        f"pattern {quoted(rule.pattern.pattern)} is prone to catastrophic backtracking: "
        f"on a {_PROBE_SIZE // 1024} KB text like {slow[:12] + '...'!r} it took over {_PROBE_LIMIT * 1000:g} ms, "
        "and an event that takes too long to scrub is dropped; rewrite repeated groups that contain "
        "another repetition, like (\\w+\\.)+, or alternatives that overlap, like (a|aa)+"
    )
    return [Problem(source, line, column, f"rule {rule.id}", message, "warning")]


def slow_probe(pattern: regex.Pattern[str]) -> str | None:
    """A text on which the pattern backtracks badly (it times out), or None if every probe runs fast."""
    own = [ch for ch in dict.fromkeys(pattern.pattern) if ch not in _META and ch.isprintable()]
    units = list(dict.fromkeys([*_PROBE_BASE, *own[:16]]))
    starts = [u for u in units if u.isalnum()][:6]
    fillers = units + [a + b for a in starts for b in units if a != b]
    deadline = time.perf_counter() + 2.0  # bound the whole check, even for a pathological pattern
    for filler in fillers:
        for tail in ("!", "\n", ""):
            probe = filler * (_PROBE_SIZE // len(filler)) + tail
            try:
                pattern.search(probe, timeout=_PROBE_LIMIT)
            except TimeoutError:
                return probe
            if time.perf_counter() > deadline:
                return None
    return None


def _selector_warnings(source: str, report: PackReport) -> list[Problem]:
    """Selectors whose first part is a likely typo of an event field: they would silently select nothing."""
    problems: list[Problem] = []
    places: list[tuple[str, Any]] = [("defaults", report.raw_defaults)]
    places += [(f"rule {rule_id}", raw) for rule_id, raw in report.raw_rules]
    for where, raw in places:
        if not isinstance(raw, dict):
            continue
        for key in ("selectors", "exclude"):
            values = raw.get(key)
            for index, selector in enumerate([values] if isinstance(values, str) else values or []):
                message = (
                    _unknown_root(selector) if isinstance(selector, str) and isinstance(values, list | str) else None
                )
                if message is not None:
                    line, column = position_of(raw, key, index)
                    problems.append(Problem(source, line, column, where, message, "warning"))
    return problems


def _unknown_root(selector: str) -> str | None:
    body = selector.strip().lstrip("!")
    if not body or body.startswith("$"):
        return None
    try:
        first = split_selector(body)[0].lower()
    except SelectorError:
        return None  # the loader reports it as an error
    if "*" in first or first.isdigit():
        return None
    if first.startswith("@"):
        if first in ITEM_ROOTS:
            return None
        close = suggest(first, ITEM_ROOTS)
        hint = f"did you mean {close!r}?" if close else f"item roots are: {', '.join(ITEM_ROOTS)}"
        return f"selector {selector!r} selects nothing: {first!r} is not an item type; {hint}"
    if first in EVENT_FIELDS:
        return None
    close = suggest(first, EVENT_FIELDS)
    if close is None:
        return None  # not a likely typo: leave custom payloads alone
    return f"selector {selector!r} probably selects nothing: events have no {first!r}; did you mean {close!r}?"


def _shadow_warnings(rules: list[tuple[Rule, RuleFile]]) -> list[Problem]:
    """`keep` rules that keep everything some redacting rule looks at, so that rule can never redact."""
    problems: list[Problem] = []
    redacting = [(r, f) for r, f in rules if r.action.type is not ActionType.KEEP]
    for keep, file in rules:
        if keep.action.type is not ActionType.KEEP or not _keeps_subtree(keep):
            continue
        silenced = [r.id for r, _ in redacting if _covers(keep, r)]
        if not silenced or file.report is None:
            continue
        named = ", ".join(silenced[:_MAX_NAMED]) + (
            f" and {len(silenced) - _MAX_NAMED} more" if silenced[_MAX_NAMED:] else ""
        )
        key = "selectors" if keep.selector.source[0] else ""
        line, column = file.report.position(keep.id, key, 0 if key else None, keep.line)
        message = (
            f"this keep rule leaves untouched everything that {named} look{'s' if len(silenced) == 1 else ''} at, "
            f"so {'it' if len(silenced) == 1 else 'they'} can never redact anything; "
            "narrow its selectors to the fields that are safe to keep"
        )
        problems.append(Problem(file.display, line, column, f"rule {keep.id}", message, "warning"))
    return problems


def _keeps_subtree(rule: Rule) -> bool:
    return rule.detector is None and rule.pattern is None and rule.keys is None


def _covers(keep: Rule, other: Rule) -> bool:
    """Whether every place `other` looks at is kept whole by `keep` (conservative: False when unsure)."""
    if not (other.detector is not None or other.pattern is not None or other.keys is not None):
        return False
    keep_include, keep_exclude = keep.selector.source
    include, exclude = other.selector.source
    own_excludes = set(exclude) | {s[1:] for s in include if s.startswith("!")}
    keep_excludes = set(keep_exclude) | {s[1:] for s in keep_include if s.startswith("!")}
    if not keep_excludes <= own_excludes:
        return False  # what `keep` spares, `other` may still look at
    includes = [s for s in include if not s.startswith("!")]
    if not includes or "**" in includes:
        return keep.selector.matches_everything
    shapes = [shape for s in includes for expanded in expand(s) for shape in _sample_shapes(expanded)]
    return all(keep.selector.matches(shape) for shape in shapes)


def _sample_shapes(selector: str) -> list[str]:
    """Concrete shapes a selector selects, with any-key stand-ins for its wildcards (`**`: zero to two keys)."""
    shapes: list[list[str]] = [[]]
    for part in split_selector(selector) if selector else []:
        if part == "**":
            options = [[], [_ANY], [_ANY, _ANY]]
        elif part.isdigit():
            options = [["#"]]
        else:
            options = [[part.replace("*", _ANY) if part != "*" else _ANY]]
        shapes = [shape + option for shape in shapes for option in options]
    return [SEP.join(shape) for shape in shapes]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


__all__ = ["EVENT_FIELDS", "ITEM_ROOTS", "RuleFile", "check_files", "read_rule_files", "run_check"]
