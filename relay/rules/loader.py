"""Loading rule packs from YAML, with errors that give file, line and rule id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import regex
import yaml

from ..errors import RelayError
from ..scrub.detectors import DETECTORS
from .keys import normalize_key_pattern
from .model import Action, ActionType, Rule, RulePack, RuleTest
from .selectors import Selector, SelectorError, expand

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "rules"
PACKAGED_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_PACKS = ("secrets", "pii")

_RULE_KEYS = ("id", "description", "detector", "pattern", "group", "keys", "selectors", "exclude", "action",
              "with", "mask_char", "keep_last", "flags", "mode")  # fmt: skip
_PACK_KEYS = ("pack", "description", "defaults", "rules", "tests")
_TEST_KEYS = ("name", "input", "expect", "absent", "present")
_PROBE_FILLERS = ("x", "a", "0", " ", "ab", "a1")


class RuleError(RelayError):
    """A rule file is invalid; carries every problem, each with file, line and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = _LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    return mapping


class _LineDict(dict[str, Any]):
    line: int = 0


class _LineList(list[Any]):
    lines: list[int]


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    items = _LineList(loader.construct_sequence(node, deep=True))
    items.lines = [child.start_mark.line + 1 for child in node.value]
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


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
    except OSError as exc:
        raise RuleError([f"{path}: cannot read rule file: {exc.strerror or exc}"]) from None
    return parse_pack(text, str(path), default_name=path.stem)


def parse_pack(text: str, source: str, default_name: str = "rules") -> RulePack:
    """Compile rule-file text; `source` names the file in problems."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise RuleError([f"{source}{where}: invalid YAML: {exc}"]) from None
    compiler = _Compiler(source)
    pack = compiler.pack(raw, default_name)
    if compiler.problems:
        raise RuleError(compiler.problems)
    return pack


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, line: int, where: str, message: str) -> None:
        self.problems.append(f"{self.source}:{line}: {where}: {message}")

    def pack(self, raw: Any, default_name: str) -> RulePack:
        if not isinstance(raw, dict):
            self.problems.append(f"{self.source}:1: a rule file must be a mapping with `rules:`")
            return RulePack(default_name, self.source)
        line = getattr(raw, "line", 1)
        for key in raw:
            if key not in _PACK_KEYS:
                self.problem(line, str(key), f"unknown key; valid keys are: {', '.join(_PACK_KEYS)}")
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.problem(line, "defaults", "must be a mapping")
            defaults = {}
        rules_raw = raw.get("rules") or []
        if not isinstance(rules_raw, list):
            self.problem(line, "rules", "must be a list of rules")
            rules_raw = []
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        lines = getattr(rules_raw, "lines", [])
        for index, rule_raw in enumerate(rules_raw):
            rule = self.rule(rule_raw, index, defaults, lines[index] if index < len(lines) else line)
            if rule is None:
                continue
            if rule.id in seen:
                self.problem(rule.line, f"rule {rule.id}", f"duplicate id (also on line {seen[rule.id]})")
            seen[rule.id] = rule.line
            rules.append(rule)
        tests = self.tests(raw.get("tests") or [], line)
        return RulePack(
            name=str(raw.get("pack") or default_name),
            source=self.source,
            description=str(raw.get("description") or ""),
            rules=tuple(rules),
            tests=tuple(tests),
        )

    def rule(self, raw: Any, index: int, defaults: dict[str, Any], item_line: int) -> Rule | None:
        if not isinstance(raw, dict):
            self.problem(item_line, f"rules[{index}]", "each rule must be a mapping")
            return None
        line = getattr(raw, "line", 0)
        rule_id = raw.get("id")
        where = f"rule {rule_id}" if rule_id else f"rules[{index}]"
        if not isinstance(rule_id, str) or not regex.fullmatch(r"[A-Za-z0-9_.:@-]+", rule_id):
            self.problem(line, where, "needs an `id` made of letters, digits and _.:@-")
            rule_id = f"rules[{index}]"
        for key in raw:
            if key not in _RULE_KEYS:
                self.problem(line, where, f"unknown key {key!r}; valid keys are: {', '.join(_RULE_KEYS)}")
        merged = {**{k: v for k, v in defaults.items() if k in ("selectors", "exclude", "action", "mode")}, **raw}
        detected = [k for k in ("detector", "pattern", "keys") if k in raw]
        action = self.action(merged, line, where)
        if len(detected) > 1:
            self.problem(line, where, f"use one of detector, pattern or keys, not {' and '.join(detected)}")
        if not detected and (action is None or action.type is not ActionType.KEEP):
            self.problem(line, where, "needs one of `detector`, `pattern` or `keys` (only `keep` rules may omit it)")
        detector = None
        pattern = None
        keys = None
        if "detector" in raw:
            detector = DETECTORS.get(str(raw["detector"]))
            if detector is None:
                self.problem(
                    line, where, f"unknown detector {raw['detector']!r}; built-in detectors: {', '.join(DETECTORS)}"
                )
        if "pattern" in raw:
            pattern = self.pattern(raw["pattern"], line, where, str(raw.get("flags", "")))
        if "keys" in raw:
            keys = self.keys(raw["keys"], line, where)
        selector = self.selector(merged.get("selectors"), merged.get("exclude"), line, where)
        group = raw.get("group", 0)
        if not isinstance(group, int) or group < 0 or (pattern is not None and group > pattern.groups):
            self.problem(line, where, f"group must be a capture group number of the pattern, got {group!r}")
            group = 0
        mode = merged.get("mode", "enforce")
        if mode not in ("enforce", "audit"):
            self.problem(line, where, f"mode must be enforce or audit, got {mode!r}")
        if mode == "audit" and action is not None and action.type is ActionType.KEEP:
            self.problem(line, where, "a keep rule changes nothing, so it can't be in audit mode")
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
            line=line,
            audit=mode == "audit",
        )

    def action(self, raw: dict[str, Any], line: int, where: str) -> Action | None:
        name = raw.get("action", "replace")
        try:
            kind = ActionType(name)
        except ValueError:
            self.problem(line, where, f"action must be one of {', '.join(a.value for a in ActionType)}, got {name!r}")
            return None
        text = raw.get("with")
        if text is not None and kind is not ActionType.REPLACE:
            self.problem(line, where, "`with` only applies to action: replace")
        mask_char = raw.get("mask_char", "*")
        if not isinstance(mask_char, str) or len(mask_char) != 1:
            self.problem(line, where, f"mask_char must be one character, got {mask_char!r}")
            mask_char = "*"
        keep_last = raw.get("keep_last", 0)
        if not isinstance(keep_last, int) or keep_last < 0:
            self.problem(line, where, f"keep_last must be a non-negative integer, got {keep_last!r}")
            keep_last = 0
        return Action(kind, None if text is None else str(text), mask_char, keep_last)

    def pattern(self, raw: Any, line: int, where: str, flags: str) -> regex.Pattern[str] | None:
        if not isinstance(raw, str) or not raw:
            self.problem(line, where, "pattern must be a non-empty string")
            return None
        value = 0
        for flag in flags:
            if flag == "i":
                value |= regex.IGNORECASE
            elif flag == "m":
                value |= regex.MULTILINE
            elif flag == "s":
                value |= regex.DOTALL
            else:
                self.problem(line, where, f"unknown flag {flag!r}; use i, m or s")
        try:
            compiled = regex.compile(raw, value | regex.VERSION1)
        except regex.error as exc:
            self.problem(line, where, f"invalid pattern {raw!r}: {exc}")
            return None
        if compiled.search(""):
            self.problem(line, where, f"pattern {raw!r} matches the empty string, which would match everywhere")
            return None
        try:  # smoke tests for catastrophic backtracking, on runs of the pattern's own characters
            for probe in _backtracking_probes(raw):
                compiled.search(probe, timeout=0.05)
        except TimeoutError:
            self.problem(line, where, f"pattern {raw!r} backtracks catastrophically (timed out on a short string)")
            return None
        return compiled

    def keys(self, raw: Any, line: int, where: str) -> regex.Pattern[str] | None:
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            self.problem(line, where, "keys must be a list of key-name patterns")
            return None
        alternatives = []
        for name in names:
            normalized = normalize_key_pattern(name)
            try:
                regex.compile(normalized)
            except regex.error as exc:
                self.problem(line, where, f"invalid key pattern {name!r}: {exc}")
                return None
            alternatives.append(f"(?:{normalized})")
        return regex.compile("|".join(alternatives), regex.IGNORECASE)

    def selector(self, include: Any, exclude: Any, line: int, where: str) -> Selector | None:
        inc = _as_list(include)
        exc = _as_list(exclude)
        if inc is None or exc is None:
            self.problem(line, where, "selectors and exclude must be strings or lists of strings")
            return None
        try:
            for selector in inc + exc:
                expand(selector.lstrip("!"))
            return selector_for(inc, exc)
        except SelectorError as exc_:
            self.problem(line, where, str(exc_))
            return None

    def tests(self, raw: Any, line: int) -> list[RuleTest]:
        if not isinstance(raw, list):
            self.problem(line, "tests", "must be a list")
            return []
        tests: list[RuleTest] = []
        for index, case in enumerate(raw):
            case_line = getattr(case, "line", line)
            if not isinstance(case, dict) or "input" not in case:
                self.problem(case_line, f"tests[{index}]", "each test needs an `input`")
                continue
            for key in case:
                if key not in _TEST_KEYS:
                    self.problem(case_line, f"tests[{index}]", f"unknown key {key!r}; valid: {', '.join(_TEST_KEYS)}")
            if "expect" not in case and "absent" not in case and "present" not in case:
                self.problem(case_line, f"tests[{index}]", "needs `expect`, `absent` or `present`")
            tests.append(
                RuleTest(
                    name=str(case.get("name") or f"tests[{index}]"),
                    input=_plain(case["input"]),
                    expect=_plain(case.get("expect")),
                    absent=tuple(str(a) for a in _as_list(case.get("absent")) or ()),
                    present=tuple(str(a) for a in _as_list(case.get("present")) or ()),
                    line=case_line,
                )
            )
        return tests


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
    """Strip the line-number dict subclass from test data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
