"""`relay rules explain`: an event before and after a project's rules, redaction by redaction.

The engine reports what it changed as Sentry `_meta` remarks, in the scrubbed string's coordinates.
The text between remarks is unchanged, so each redacted span's place in the original is recovered by
matching those unchanged pieces against the original; where that is ambiguous, the whole value is
treated as redacted. The "before" view masks every redacted span, so a removed value is never
printed where it could land in a file, a pipe or a CI log; only a terminal may see it, highlighted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import regex

from ..config import Config, ProjectConfig, default_config_path, load_config
from ..envelope import parse_envelope
from ..errors import ConfigError, EnvelopeError, RelayError
from ..scrub.engine import Scrubber, ScrubError
from ..scrub.registry import ScrubberRegistry
from .loader import RuleError, load_pack

ACTIONS = {"x": "removed", "s": "replaced", "m": "masked", "p": "hashed"}
EVENT_ITEM_TYPES = ("event", "transaction", "feedback", "replay_event")  # items scrubbed as events
_ALIGN_TIMEOUT = 0.05  # seconds; past it, the whole value counts as redacted
_UNSAFE_CHARS = regex.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # never reach a terminal raw
_UNSAFE_IN_JSON = regex.compile(r"[\x7f-\x9f\u2028\u2029]")  # json.dumps escapes the C0 controls itself
_MARK = regex.compile(r"\ue000(\d+)\ue001|\"\ue002(\d+)\ue003\"")
_GONE = object()
_RED, _DIM, _RESET = "\x1b[1;41;97m", "\x1b[2m", "\x1b[0m"

Path_ = tuple[str, ...]


class ExplainError(RelayError):
    """The event, project or rules given to explain are unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class Redaction:
    """One change the rules made: where, by which rule, how, and which span."""

    path: str  # dotted, list indices as numbers: exception.values.0.stacktrace.frames.3.vars.password
    rule: str
    action: str  # removed, replaced, masked or hashed
    start: int | None  # the span in the scrubbed value (Sentry's remark); None when the value was removed
    end: int | None
    original_length: int  # of the whole original value at `path` (Sentry's `len`)
    original_start: int  # the span in the original value
    original_end: int

    def as_json(self) -> dict[str, Any]:
        """The JSON form used by `--format json` and the playground API."""
        return {
            "path": self.path,
            "rule": self.rule,
            "action": self.action,
            "start": self.start,
            "end": self.end,
            "original_length": self.original_length,
            "original_start": self.original_start,
            "original_end": self.original_end,
        }


@dataclass(frozen=True, slots=True)
class _Hidden:
    """A redacted piece of an original value, and the rules that redacted it."""

    value: Any
    rules: tuple[str, ...]

    @property
    def length(self) -> int:
        return len(self.value) if isinstance(self.value, str) else len(_text_of(self.value))

    def mask(self) -> str:
        by = ", ".join(self.rules) or "the scrubber, without a remark"
        return f"«redacted {self.length} chars by {by}»"


_Piece = str | _Hidden


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a set of rules does to one event; `as_json` never contains a redacted value."""

    project: int | None
    rules: tuple[str, ...]
    before: dict[str, Any]  # the original, every redacted span masked
    after: dict[str, Any]  # exactly what the server would forward
    redactions: tuple[Redaction, ...]
    _original: dict[str, Any] = field(repr=False)
    _pieces: dict[Path_, list[_Piece]] = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        """`{"project", "rules", "before", "after", "redactions"}`."""
        return {
            "project": self.project,
            "rules": list(self.rules),
            "before": self.before,
            "after": self.after,
            "redactions": [r.as_json() for r in self.redactions],
        }

    def revealed_before(self, color: bool) -> str:
        """The original, pretty-printed, redacted spans highlighted (for a terminal only)."""
        inserts: list[tuple[str, tuple[str, ...]]] = []

        def sentinel(piece: _Hidden, whole: bool) -> str:
            text = _safe(json.dumps(piece.value, ensure_ascii=False))
            inserts.append((text if whole else text[1:-1], piece.rules))
            index = len(inserts) - 1
            return f"\ue002{index}\ue003" if whole else f"\ue000{index}\ue001"

        tree = _apply_pieces(self._original, self._pieces, sentinel)

        def expand(match: regex.Match[str]) -> str:
            text, rules = inserts[int(match.group(1) or match.group(2))]
            label = f"⟦{', '.join(rules)}⟧"
            return f"{_RED}{text}{_RESET}{_DIM}{label}{_RESET}" if color else f"⟦{text}⟧{label}"

        return _MARK.sub(expand, _dump(tree))


def explain_event(
    scrubber: Scrubber, event: dict[str, Any], project: int | None = None, rules: Sequence[str] = ()
) -> Explanation:
    """Scrub a copy of `event` and explain every change; `event` itself is left as it was."""
    original = copy.deepcopy(event)
    work = copy.deepcopy(event)
    work.pop("_meta", None)  # remarks the event came with are not this run's
    after = _scrub(scrubber, work)
    meta = after.get("_meta", {})
    if isinstance(event.get("_meta"), dict):
        after = _scrub(scrubber, copy.deepcopy(event))  # the server merges its remarks into the event's own
    redactions: list[Redaction] = []
    pieces: dict[Path_, list[_Piece]] = {}
    for path, remarks, length in _remarks_in(meta):
        found, old = _lookup(original, path)
        _, new = _lookup(after, path)
        spans = _explain_value(old if found else "", new, remarks)
        pieces[path] = spans.pieces
        dotted = ".".join(path)
        for remark, (a, b) in zip(remarks, spans.original_spans, strict=True):
            start, end = (remark[2], remark[3]) if len(remark) >= 4 else (None, None)
            kind = str(remark[1])
            redactions.append(Redaction(dotted, str(remark[0]), ACTIONS.get(kind, kind), start, end, length, a, b))
    # A safety net: a change the engine made without a remark is masked too (never shown, never listed).
    for path in _unremarked(original, after, (), pieces):
        pieces[path] = [_Hidden(_lookup(original, path)[1], ())]
    before = _apply_pieces(original, pieces, lambda piece, whole: piece.mask())
    return Explanation(project, tuple(rules), before, after, tuple(redactions), original, pieces)


def _scrub(scrubber: Scrubber, event: dict[str, Any]) -> dict[str, Any]:
    """Scrub like the server; a time-out is retried once, since a long-running server's caches are warm."""
    spare = copy.deepcopy(event)
    try:
        return scrubber.scrub_event(event)
    except ScrubError:
        return scrubber.scrub_event(spare)


def _unremarked(old: Any, new: Any, path: Path_, covered: Container[Path_]) -> Iterator[Path_]:
    """Paths where the scrubbed event differs from the original but no remark says so."""
    if path in covered:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if path or key != "_meta":
                yield from _unremarked(value, new.get(key, _GONE), (*path, key), covered)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _unremarked(a, b, (*path, str(index)), covered)
    elif type(old) is not type(new) or old != new:
        yield path


def _remarks_in(meta: Any, path: Path_ = ()) -> Iterator[tuple[Path_, list[list[Any]], int]]:
    """(path, remarks, original length) for every node of a `_meta` tree that has remarks."""
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "":
            remarks = value.get("rem") if isinstance(value, dict) else None
            if isinstance(remarks, list) and remarks:
                valid = [r for r in remarks if isinstance(r, list) and len(r) >= 2]
                yield path, valid, int(value.get("len") or 0)
        else:
            yield from _remarks_in(value, (*path, str(key)))


@dataclass(slots=True)
class _Spans:
    pieces: list[_Piece]
    original_spans: list[tuple[int, int]]  # one per remark, in the original value


def _explain_value(old: Any, new: Any, remarks: list[list[Any]]) -> _Spans:
    """Split the original value into unchanged text and redacted pieces, one span per remark."""
    rules = tuple(dict.fromkeys(str(r[0]) for r in remarks))
    whole = _Spans([_Hidden(old, rules)], [(0, _length(old))] * len(remarks))
    if not isinstance(old, str) or not isinstance(new, str) or any(len(r) < 4 for r in remarks):
        return whole
    order = sorted(range(len(remarks)), key=lambda i: (remarks[i][2], remarks[i][3]))
    pattern: list[str] = []
    cursor = 0
    for index in order:
        remark = remarks[index]
        start, end = remark[2], remark[3]
        if not (isinstance(start, int) and isinstance(end, int) and cursor <= start <= end <= len(new)):
            return whole  # overlapping or out of range: remarks from two passes over one value
        pattern.append(regex.escape(new[cursor:start]))
        # A mask keeps the length; other replacements say nothing about the original's length.
        pattern.append(f"(.{{{end - start}}})" if remark[1] == "m" else "(.+?)")
        cursor = end
    pattern.append(regex.escape(new[cursor:]))
    try:
        match = regex.fullmatch("".join(pattern), old, regex.DOTALL, timeout=_ALIGN_TIMEOUT)
    except TimeoutError:
        match = None
    if match is None:
        return whole
    spans: list[tuple[int, int]] = [(0, 0)] * len(remarks)
    pieces: list[_Piece] = []
    cursor = 0
    for group, index in enumerate(order, 1):
        start, end = match.span(group)
        spans[index] = (start, end)
        if start > cursor:
            pieces.append(old[cursor:start])
        pieces.append(_Hidden(old[start:end], (str(remarks[index][0]),)))
        cursor = end
    if cursor < len(old):
        pieces.append(old[cursor:])
    return _Spans(pieces, spans)


def _apply_pieces(
    original: dict[str, Any], pieces: dict[Path_, list[_Piece]], render: Callable[[_Hidden, bool], str]
) -> dict[str, Any]:
    """A copy of the original with each redacted piece replaced by `render(piece, whole)`."""
    tree = copy.deepcopy(original)
    for path, parts in pieces.items():
        if not path:
            continue
        if len(parts) == 1 and isinstance(parts[0], _Hidden) and not isinstance(parts[0].value, str):
            value: Any = render(parts[0], True)
        else:
            value = "".join(p if isinstance(p, str) else render(p, False) for p in parts)
        _assign(tree, path, value)
    return tree


def _lookup(tree: Any, path: Path_) -> tuple[bool, Any]:
    for segment in path:
        if isinstance(tree, dict) and segment in tree:
            tree = tree[segment]
        elif isinstance(tree, list) and segment.isdigit() and int(segment) < len(tree):
            tree = tree[int(segment)]
        else:
            return False, None
    return True, tree


def _assign(tree: Any, path: Path_, value: Any) -> None:
    found, parent = _lookup(tree, path[:-1])
    last = path[-1]
    if found and isinstance(parent, dict) and last in parent:
        parent[last] = value
    elif found and isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = value


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(_text_of(value))


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


# -- input ------------------------------------------------------------------------------


def parse_event(data: bytes, source: str) -> dict[str, Any]:
    """An event from JSON (or from the first event item of an envelope); ExplainError says what is wrong."""
    if not data.strip():
        raise ExplainError(f"{source}: is empty; expected a JSON event")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        value = _event_from_envelope(data, source)
        if value is None:
            raise ExplainError(f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ExplainError(f"{source}: an event must be a JSON object, got {_json_type(value)}")
    return value


def _event_from_envelope(data: bytes, source: str) -> Any:
    """The first event-like item of an envelope, or None when the data doesn't look like one."""
    first, _, rest = data.partition(b"\n")
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or not rest.strip():
        return None
    try:
        envelope = parse_envelope(data)
        for item in envelope.items:
            if item.type in EVENT_ITEM_TYPES:
                return item.json()
    except EnvelopeError as exc:
        raise ExplainError(f"{source}: neither a JSON event nor a valid envelope: {exc}") from None
    types = ", ".join(item.type for item in envelope.items) or "none"
    raise ExplainError(f"{source}: an envelope without an event item (item types: {types})")


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- the command ----------------------------------------------------------------------------


def run_explain(args: argparse.Namespace) -> int:
    """Run `relay rules explain`; 0 when explained, 2 for bad input, config, rules or project."""
    try:
        config = _config(args.config)
        project = _project(config, args.project)
        names, scrubber = _scrubber(config, project, _rule_names(args.rules))
        event = _read_event(args.event)
        explanation = explain_event(scrubber, event, args.project, names)
    except ExplainError as exc:
        print(f"relay rules explain: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        _print_problems("config", exc.problems)
        return 2
    except RuleError as exc:
        _print_problems("rules", exc.problems)
        return 2
    except ScrubError as exc:
        print(f"relay rules explain: the server would drop this event (scrubbing failed): {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    if args.format == "json":
        out.write(orjson.dumps(explanation.as_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        reveal = out.isatty() and not os.environ.get("NO_COLOR")
        out.write(render_text(explanation, reveal=reveal))
    out.flush()
    return 0


def render_text(explanation: Explanation, reveal: bool = False) -> str:
    """The human report: before, after and the redactions; original values only if `reveal` (a TTY)."""
    project = f"project {explanation.project}" if explanation.project is not None else "top-level rules"
    rules = ", ".join(explanation.rules) or "(none: scrubbing off)"
    if reveal:
        before_title, before = "Before (redacted spans highlighted):", explanation.revealed_before(color=True)
    else:
        before_title, before = "Before (redacted values hidden):", _dump(explanation.before)
    after = {k: v for k, v in explanation.after.items() if k != "_meta"}
    lines = [f"{project}; rules: {rules}", "", before_title, before, "", "After (without _meta):", _dump(after), ""]
    count = len(explanation.redactions)
    lines.append(f"{count} redaction{'s' if count != 1 else ''}" + (":" if count else "."))
    if count:
        rows = [("PATH", "RULE", "ACTION", "SPAN (original)")]
        rows += [(_safe(r.path), r.rule, r.action, _span(r)) for r in explanation.redactions]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for path, rule, action, span in rows:
            lines.append(f"  {path.ljust(widths[0])}  {rule.ljust(widths[1])}  {action.ljust(widths[2])}  {span}")
    return "\n".join(lines) + "\n"


def _span(r: Redaction) -> str:
    if r.original_start == 0 and r.original_end == r.original_length:
        return f"whole value ({r.original_length} chars)"
    return f"{r.original_start}-{r.original_end} of {r.original_length} chars"


def _dump(value: Any) -> str:
    """Pretty JSON whose strings can't carry terminal control sequences."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_escape, text)


def _safe(text: str) -> str:
    return _UNSAFE_CHARS.sub(_escape, text)


def _escape(match: regex.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _config(path: str | None) -> Config:
    if path is None and not os.path.exists(default_config_path()):
        return Config()  # no config at hand: the default rule packs, like `relay scrub`
    return load_config(path or default_config_path())


def _project(config: Config, project_id: int | None) -> ProjectConfig | None:
    if project_id is None:
        return None
    project = config.project(project_id)
    if project is None:
        known = ", ".join(str(p.id) for p in config.projects) or "none"
        raise ExplainError(f"unknown project {project_id} in {config.source} (configured projects: {known})")
    return project


def _rule_names(raw: Any) -> list[str] | None:
    """`--rules a --rules b,c` -> [a, b, c]; None when not given."""
    if not raw:
        return None
    names: list[str] = []
    for value in raw:
        for item in value if isinstance(value, list) else [value]:
            names.extend(n.strip() for n in str(item).split(",") if n.strip())
    return names


def _scrubber(config: Config, project: ProjectConfig | None, names: list[str] | None) -> tuple[list[str], Scrubber]:
    """The server's scrubber for the project, or one made of the packs named on the command line."""
    if names is None:
        return list(config.rules_for(project)), ScrubberRegistry(config).for_project(project)
    rules = [rule for name in names for rule in load_pack(name).rules]  # paths relative to the working dir
    return names, Scrubber(
        rules, config.scrub.hash_key.encode(), config.scrub.timeout, identity_keys=config.scrub.identity_keys
    )


def _read_event(path: str) -> dict[str, Any]:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise ExplainError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_event(data, "stdin" if path == "-" else path)


def _print_problems(what: str, problems: list[str]) -> None:
    print(f"relay rules explain: {len(problems)} problem(s) in the {what}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


__all__ = ["ACTIONS", "ExplainError", "Explanation", "Redaction", "explain_event", "parse_event", "run_explain"]
