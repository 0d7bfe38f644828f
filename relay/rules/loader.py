"""Loading rule packs from YAML, with problems that give file, line, column and rule id."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import regex
import yaml

from ..errors import RelayError
from ..scrub.detectors import DETECTORS
from .keys import normalize_key_pattern
from .model import Action, ActionType, Rule, RulePack, RuleTest
from .selectors import SHORTCUTS, Selector, SelectorError, validate_selector
from .yamlpos import LineDict, LineLoader, Position, item_position, key_position, position_of

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "rules"
PACKAGED_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_PACKS = ("secrets", "pii")

_RULE_KEYS = ("id", "description", "detector", "pattern", "group", "keys", "selectors", "exclude", "action",
              "with", "mask_char", "keep_last", "flags", "mode")  # fmt: skip
_PACK_KEYS = ("pack", "description", "defaults", "rules", "tests")
_DEFAULT_KEYS = ("action", "selectors", "exclude", "mode")
_TEST_KEYS = ("name", "input", "expect", "absent", "present")
_PROBE_FILLERS = ("x", "a", "0", " ", "ab", "a1")
# Hints for the YAML mistakes people make most when hand-editing rule files.
_YAML_HINTS = {
    "unknown escape character": "write patterns in single quotes ('\\d+'), where a backslash is just a backslash",
    "cannot start any token": "indent with spaces, not tabs",
    "mapping values are not allowed": "check the indentation, and quote values that contain ': '",
}

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in a rule file: where it is, which rule, and what to do about it."""

    source: str
    line: int
    column: int
    where: str  # `rule <id>`, `rules[3]`, `defaults`, `tests[0]`, or "" for the file as a whole
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.source}:{self.line}:{self.column}: {where}{prefix}{self.message}"


class RuleError(RelayError):
    """A rule file is invalid; carries every problem, each with file, line, column and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(slots=True)
class PackReport:
    """What `inspect_pack` found: every problem, the rules that compiled, and their YAML (with positions)."""

    problems: list[Problem]
    compiled: RulePack | None = None  # the rules and tests that compiled (None: not even YAML)
    raw_rules: list[tuple[str, Any]] = field(default_factory=list)  # (rule id, its YAML mapping), in file order
    raw_defaults: Any = None

    @property
    def errors(self) -> list[Problem]:
        """Only the problems that stop the file from loading."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def pack(self) -> RulePack | None:
        """The pack, if the file has no errors."""
        return None if self.errors else self.compiled

    def position(self, rule_id: str, key: str = "", index: int | None = None, line: int = 0) -> Position:
        """Where a rule's `key` is written (in `defaults` if the rule inherits it); the rule's start otherwise.

        Two rules may share an id (an error): `line`, the rule's first line, tells them apart.
        """
        raws = [r for i, r in self.raw_rules if i == rule_id and (not line or position_of(r)[0] == line)]
        raw = raws[0] if raws else None
        inherited = key and not (isinstance(raw, dict) and key in raw)
        if inherited and isinstance(self.raw_defaults, dict) and key in self.raw_defaults:
            return position_of(self.raw_defaults, key, index)
        return position_of(raw, key or None, index)


def resolve_pack_path(name: str, base: Path | None = None) -> Path:
    """A pack name (`pii`) is a shipped pack; anything with a slash or .yml suffix is a file path."""
    if "/" in name or "\\" in name or name.endswith((".yml", ".yaml")):
        path = Path(name)
        return path if path.is_absolute() or base is None else base / path
    for directory in (PACKAGED_DIR, BUILTIN_DIR):
        candidate = directory / f"{name}.yml"
        if candidate.exists():
            return candidate
    raise RuleError([f"{name}: no shipped rule pack by that name (shipped: {', '.join(shipped_packs())})"])


def shipped_packs() -> list[str]:
    """Names of the packs that ship with relay."""
    names = {p.stem for d in (PACKAGED_DIR, BUILTIN_DIR) if d.exists() for p in d.glob("*.yml")}
    return sorted(names)


def load_pack(name: str, base: Path | None = None) -> RulePack:
    """Load and compile one pack by name or path; raise RuleError listing every problem."""
    path = resolve_pack_path(name, base)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError([f"{path}: cannot read rule file: {_reason(exc)}"]) from None
    return parse_pack(text, str(path), default_name=path.stem)


def parse_pack(text: str, source: str, default_name: str = "rules") -> RulePack:
    """Compile rule-file text; `source` names the file in problems. Warnings don't stop loading."""
    report = inspect_pack(text, source, default_name)
    if report.pack is None:
        raise RuleError([str(p) for p in report.errors])
    return report.pack


def inspect_pack(text: str, source: str, default_name: str = "rules") -> PackReport:
    """Compile rule-file text and report every problem, warnings included, without raising."""
    try:
        raw = yaml.load(text, Loader=LineLoader)
    except yaml.YAMLError as exc:
        return PackReport([_yaml_problem(exc, source)])
    compiler = _Compiler(source)
    pack = compiler.pack(raw, default_name)
    problems = sorted(compiler.problems, key=lambda p: (p.line, p.column))  # file order, as an editor shows
    defaults = raw.get("defaults") if isinstance(raw, dict) else None
    return PackReport(problems, pack, compiler.raw_rules, defaults)


def _yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    message = f"invalid YAML: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and (context_mark.line, context_mark.column) != (line - 1, column - 1):
        message += f" ({context} that starts at line {context_mark.line + 1}, column {context_mark.column + 1})"
    hint = next((h for needle, h in _YAML_HINTS.items() if needle in problem), None)
    return Problem(source, line, column, "", f"{message}; {hint}" if hint else message)


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or str(exc)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The valid choice closest to a misspelt word, if one is close enough."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def quoted(text: str) -> str:
    """A pattern as it is written in YAML single quotes: backslashes stay single, unlike Python's repr."""
    return "'" + text.replace("'", "''") + "'"


def _unknown(what: str, value: object, choices: Iterable[str], listing: str = "valid") -> str:
    """`unknown key 'selector'; did you mean 'selectors'?`, else the list of valid values."""
    options = list(choices)
    close = suggest(str(value), options)
    if close is not None:
        return f"unknown {what} {value!r}; did you mean {close!r}?"
    return f"unknown {what} {value!r}; {listing}: {', '.join(options)}"


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.raw_rules: list[tuple[str, Any]] = []
        self._seen: set[tuple[int, int, str]] = set()

    def problem(self, pos: Position, where: str, message: str, severity: Severity = "error") -> None:
        # A mistake in `defaults` would otherwise come back once for every rule that inherits it.
        if (pos[0], pos[1], message) not in self._seen:
            self._seen.add((pos[0], pos[1], message))
            self.problems.append(Problem(self.source, pos[0], pos[1], where, message, severity))

    def repeated_keys(self, raw: Any, where: str) -> None:
        for key, pos, first in getattr(raw, "repeated", ()):
            message = f"key {key!r} is written twice (first on line {first[0]}); only this one counts"
            self.problem(pos, where, message, "warning")

    def pack(self, raw: Any, default_name: str) -> RulePack:
        if not isinstance(raw, dict):
            self.problem((1, 1), "", "a rule file must be a mapping with `rules:`")
            return RulePack(default_name, self.source)
        self.repeated_keys(raw, "")
        for key in raw:
            if key not in _PACK_KEYS:
                self.problem(key_position(raw, key), "", _unknown("top-level key", key, _PACK_KEYS))
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.problem(position_of(raw, "defaults"), "defaults", "must be a mapping")
            defaults = {}
        self.defaults(defaults)
        rules_raw = raw.get("rules") or []
        if not isinstance(rules_raw, list):
            self.problem(position_of(raw, "rules"), "rules", "must be a list of rules")
            rules_raw = []
        rules: list[Rule] = []
        seen: dict[str, Position] = {}
        for index, rule_raw in enumerate(rules_raw):
            rule = self.rule(rule_raw, index, defaults, item_position(rules_raw, index))
            if rule is None:
                continue
            id_pos = position_of(rule_raw, "id")
            if rule.id in seen:
                first = seen[rule.id]
                self.problem(
                    id_pos, f"rule {rule.id}", f"duplicate id (also on line {first[0]}); give each rule its own id"
                )
            seen.setdefault(rule.id, id_pos)
            rules.append(rule)
        tests = self.tests(raw.get("tests") or [], position_of(raw, "tests"))
        return RulePack(
            name=str(raw.get("pack") or default_name),
            source=self.source,
            description=str(raw.get("description") or ""),
            rules=tuple(rules),
            tests=tuple(tests),
        )

    def defaults(self, defaults: dict[str, Any]) -> None:
        """Check `defaults` once, so a mistake there is reported there and not once per rule."""
        self.repeated_keys(defaults, "defaults")
        for key in defaults:
            if key not in _DEFAULT_KEYS:
                self.problem(
                    key_position(defaults, key),
                    "defaults",
                    _unknown("key", key, _DEFAULT_KEYS, "only these can have defaults"),
                )
        self.action(defaults, "defaults", defaults, defaults)
        self.mode(defaults, defaults, "defaults")
        self.selector(defaults, {"selectors": defaults, "exclude": defaults}, "defaults")

    def rule(self, raw: Any, index: int, defaults: dict[str, Any], item_pos: Position) -> Rule | None:
        if not isinstance(raw, dict):
            self.problem(item_pos, f"rules[{index}]", "each rule must be a mapping (start it with `- id: ...`)")
            return None
        rule_id = raw.get("id")
        where = f"rule {rule_id}" if rule_id else f"rules[{index}]"
        if not isinstance(rule_id, str) or not regex.fullmatch(r"[A-Za-z0-9_.:@-]+", rule_id):
            self.problem(position_of(raw, "id"), where, "needs an `id` made of letters, digits and _.:@-")
            rule_id = f"rules[{index}]"
        self.raw_rules.append((rule_id, raw))
        self.repeated_keys(raw, where)
        for key in raw:
            if key not in _RULE_KEYS:
                self.problem(key_position(raw, key), where, _unknown("key", key, _RULE_KEYS, "valid keys are"))
        merged = {**{k: v for k, v in defaults.items() if k in _DEFAULT_KEYS}, **raw}
        holders = {k: (raw if k in raw else defaults) for k in _DEFAULT_KEYS}
        detected = [k for k in ("detector", "pattern", "keys") if k in raw]
        action = self.action(merged, where, holders["action"], raw)
        if len(detected) > 1:
            self.problem(
                key_position(raw, detected[1]),
                where,
                f"use one of detector, pattern or keys, not {' and '.join(detected)}",
            )
        if not detected and (action is None or action.type is not ActionType.KEEP):
            self.problem(
                position_of(raw), where, "needs one of `detector`, `pattern` or `keys` (only `keep` rules may omit it)"
            )
        detector = None
        pattern = None
        keys = None
        if "detector" in raw:
            detector = DETECTORS.get(str(raw["detector"]))
            if detector is None:
                message = _unknown("detector", raw["detector"], DETECTORS, "built-in detectors")
                self.problem(position_of(raw, "detector"), where, message)
        if "pattern" in raw:
            pattern = self.pattern(raw, where)
        if "keys" in raw:
            keys = self.keys(raw, where)
        selector = self.selector(merged, holders, where)
        group = raw.get("group", 0)
        if not isinstance(group, int) or group < 0 or (pattern is not None and group > pattern.groups):
            self.problem(
                position_of(raw, "group"), where, f"group must be a capture group number of the pattern, got {group!r}"
            )
            group = 0
        mode = self.mode(merged, holders["mode"], where)
        if mode == "audit" and action is not None and action.type is ActionType.KEEP:
            self.problem(
                position_of(holders["mode"], "mode"), where, "a keep rule changes nothing, so it can't be in audit mode"
            )
        if action is None or selector is None:
            return None
        return Rule(
            id=str(rule_id),
            description=str(raw.get("description") or ""),
            action=action,
            selector=selector,
            detector=detector,
            pattern=pattern,
            group=group,
            keys=keys,
            source=self.source,
            line=raw.pos[0] if isinstance(raw, LineDict) else 0,
            audit=mode == "audit",
        )

    def mode(self, raw: dict[str, Any], holder: Any, where: str) -> str:
        mode = raw.get("mode", "enforce")
        if mode not in ("enforce", "audit"):
            close = suggest(str(mode), ("enforce", "audit"))
            hint = f"; did you mean {close!r}?" if close else ""
            self.problem(position_of(holder, "mode"), where, f"mode must be enforce or audit, got {mode!r}{hint}")
        return str(mode)

    def action(self, raw: dict[str, Any], where: str, holder: Any, rule: Any) -> Action | None:
        """`raw` merges the rule with its defaults; `holder` is where `action` was written, `rule` the rule."""
        name = raw.get("action", "replace")
        try:
            kind = ActionType(name)
        except ValueError:
            names = [a.value for a in ActionType]
            close = suggest(str(name), names)
            hint = f"; did you mean {close!r}?" if close else ""
            self.problem(
                position_of(holder, "action"), where, f"action must be one of {', '.join(names)}, got {name!r}{hint}"
            )
            return None
        text = raw.get("with")
        if text is not None and kind is not ActionType.REPLACE:
            self.problem(position_of(rule, "with"), where, "`with` only applies to action: replace")
        mask_char = raw.get("mask_char", "*")
        if not isinstance(mask_char, str) or len(mask_char) != 1:
            self.problem(position_of(rule, "mask_char"), where, f"mask_char must be one character, got {mask_char!r}")
            mask_char = "*"
        keep_last = raw.get("keep_last", 0)
        if not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 0:
            self.problem(
                position_of(rule, "keep_last"), where, f"keep_last must be a non-negative integer, got {keep_last!r}"
            )
            keep_last = 0
        return Action(kind, None if text is None else str(text), mask_char, keep_last)

    def pattern(self, rule: dict[str, Any], where: str) -> regex.Pattern[str] | None:
        raw, pos = rule["pattern"], position_of(rule, "pattern")
        if not isinstance(raw, str) or not raw:
            self.problem(pos, where, "pattern must be a non-empty string")
            return None
        value = 0
        for flag in str(rule.get("flags", "")):
            if flag == "i":
                value |= regex.IGNORECASE
            elif flag == "m":
                value |= regex.MULTILINE
            elif flag == "s":
                value |= regex.DOTALL
            else:
                self.problem(position_of(rule, "flags"), where, f"unknown flag {flag!r}; use i, m or s")
        try:
            compiled = regex.compile(raw, value | regex.VERSION1)
        except regex.error as exc:
            self.problem(pos, where, f"invalid pattern {quoted(raw)}: {exc}")
            return None
        if compiled.search(""):
            self.problem(pos, where, f"pattern {quoted(raw)} matches the empty string, which would match everywhere")
            return None
        try:  # smoke tests for catastrophic backtracking, on runs of the pattern's own characters
            for probe in _backtracking_probes(raw):
                compiled.search(probe, timeout=0.05)
        except TimeoutError:
            self.problem(
                pos,
                where,
                f"pattern {quoted(raw)} backtracks catastrophically (timed out on a short string), so relay "
                "refuses it; avoid a repeated group that contains another repetition or overlapping alternatives, "
                "like (a+)+ or (a|aa)+",
            )
            return None
        return compiled

    def keys(self, rule: dict[str, Any], where: str) -> regex.Pattern[str] | None:
        raw = rule["keys"]
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            self.problem(position_of(rule, "keys"), where, "keys must be a list of key-name patterns")
            return None
        alternatives = []
        for index, name in enumerate(names):
            normalized = normalize_key_pattern(name)
            try:
                regex.compile(normalized)
            except regex.error as exc:
                self.problem(position_of(rule, "keys", index), where, f"invalid key pattern {quoted(name)}: {exc}")
                return None
            alternatives.append(f"(?:{normalized})")
        return regex.compile("|".join(alternatives), regex.IGNORECASE)

    def selector(self, merged: dict[str, Any], holders: dict[str, Any], where: str) -> Selector | None:
        """`holders` says which mapping each of `selectors` and `exclude` was written in (the rule or defaults)."""
        lists: dict[str, list[str]] = {}
        for key in ("selectors", "exclude"):
            values = _as_list(merged.get(key))
            if values is None:
                self.problem(
                    position_of(holders[key], key), where, f"{key} must be a selector or a list of selectors (texts)"
                )
                continue
            lists[key] = values
            for index, selector in enumerate(values):
                message = _selector_problem(selector)
                if message is not None:
                    self.problem(position_of(holders[key], key, index), where, message)
                    lists.pop(key, None)
        if len(lists) < 2:
            return None
        return selector_for(lists["selectors"], lists["exclude"])

    def tests(self, raw: Any, pos: Position) -> list[RuleTest]:
        if not isinstance(raw, list):
            self.problem(pos, "tests", "must be a list of tests (each starting with `- name: ...`)")
            return []
        tests: list[RuleTest] = []
        names: dict[str, int] = {}
        for index, case in enumerate(raw):
            where = f"tests[{index}]"
            if not isinstance(case, dict) or "input" not in case:
                self.problem(
                    position_of(case) if isinstance(case, dict) else item_position(raw, index),
                    where,
                    "each test needs an `input`",
                )
                continue
            self.repeated_keys(case, where)
            for key in case:
                if key not in _TEST_KEYS:
                    self.problem(key_position(case, key), where, _unknown("key", key, _TEST_KEYS))
            if "expect" not in case and "absent" not in case and "present" not in case:
                self.problem(position_of(case), where, "needs `expect`, `absent` or `present`")
            name = case.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                self.problem(position_of(case, "name"), where, f"name must be some text, got {name!r}")
            elif isinstance(name, str):
                if name in names:
                    self.problem(
                        position_of(case, "name"),
                        where,
                        f"test name {name!r} is also used on line {names[name]}",
                        "warning",
                    )
                names.setdefault(name, position_of(case, "name")[0])
            self.test_values(case, where)
            tests.append(
                RuleTest(
                    name=str(case.get("name") or f"tests[{index}]"),
                    input=_plain(case["input"]),
                    expect=_plain(case.get("expect")),
                    absent=tuple(str(a) for a in _as_list(case.get("absent")) or ()),
                    present=tuple(str(a) for a in _as_list(case.get("present")) or ()),
                    line=position_of(case)[0],
                )
            )
        return tests

    def test_values(self, case: dict[str, Any], where: str) -> None:
        value = case["input"]
        if not isinstance(value, dict | str):
            self.problem(
                position_of(case, "input"), where, "input must be an event (a mapping like {message: ...}) or a text"
            )
        elif "expect" in case and not isinstance(case["expect"], type(value)):
            kind = "an event (a mapping), like the input" if isinstance(value, dict) else "a text, like the input"
            self.problem(position_of(case, "expect"), where, f"expect must be {kind}")
        for key in ("absent", "present"):
            values = case.get(key)
            if key in case and (not _as_list(values) or not all(v for v in values or ())):
                self.problem(position_of(case, key), where, f"{key} must be a text or a list of texts, got {values!r}")


def _selector_problem(selector: str) -> str | None:
    """What is wrong with one selector, in words, or None."""
    body = selector.strip().lstrip("!")
    try:
        validate_selector(body)
    except SelectorError as exc:
        if body.startswith("$") and "shortcut" in str(exc):
            name = body.partition(".")[0]
            close = suggest(body, SHORTCUTS) or suggest(name, SHORTCUTS)
            if close is not None:
                return f"unknown type shortcut {name!r} in selector {selector!r}; did you mean {close!r}?"
        return str(exc)
    return None


def _backtracking_probes(pattern: str) -> list[str]:
    """Short strings that make textbook catastrophic patterns time out: runs of each literal, then a mismatch."""
    literals = {ch for ch in pattern if ch.isalnum()}
    fillers = list(_PROBE_FILLERS) + sorted(literals)[:8]
    return [
        filler * (size // len(filler)) + tail for size in (48, 1024) for filler in fillers for tail in ("!", "\n", "")
    ]


_SELECTORS: dict[tuple[tuple[str, ...], tuple[str, ...]], Selector] = {}


def selector_for(include: list[str], exclude: list[str]) -> Selector:
    """One shared Selector per distinct include/exclude list, so the engine evaluates each once per path."""
    key = (tuple(include), tuple(exclude))
    selector = _SELECTORS.get(key)
    if selector is None:
        selector = _SELECTORS[key] = Selector(include, exclude)
    return selector


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _plain(value: Any) -> Any:
    """Strip the position-tracking subclasses from test data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
