"""Where a Sentry PII rule applies, in our terms: its selectors (`$frame.vars && !password`) and key patterns.

Sentry matches a selector against the path of one value, from the end: `password` is any value under a key
`password`, `$frame.vars` the `vars` of a frame, and neither covers what lies beneath. Ours are anchored at the
root and cover a value's whole subtree. So every Sentry selector becomes one of ours that selects at least as
much. A Sentry exclusion (`!order_id`) spares only that value, not what is nested in it, while ours would
spare the subtree; what ours would wrongly spare comes back as selectors of its own (`Where.beneath`).

Sentry compares key names with a regex on the raw key; ours compare normalized keys (no case, no `_ - . `),
so a key pattern is rewritten to match the normalized form of every key the original matches.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass, field
from typing import Literal

import regex

from .keys import normalize_key, normalize_key_pattern
from .selectors import SHORTCUTS, SelectorError, expand, validate_selector

_MAX_CONJUNCTS = 64


class SentrySelectorError(ValueError):
    """A Sentry selector or key pattern that is invalid or has no equivalent here."""


# -- our side: paths of segments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seg:
    """One segment of our selectors: a key, `*` (one segment), `**` (any number) or a list index."""

    kind: Literal["key", "one", "deep", "index"]
    text: str = ""


ONE, DEEP, INDEX = Seg("one"), Seg("deep"), Seg("index")
Path = tuple[Seg, ...]


def _path(text: str) -> Path:
    """Our selector text (no quotes needed) as segments."""
    if not text:
        return ()
    return tuple(DEEP if p == "**" else ONE if p == "*" else Seg("key", p) for p in text.split("."))


def render(path: Path, exact: bool = False) -> str:
    """A path in our selector syntax (which covers a subtree).

    Keys we can't write exactly (with a quote or `*`, digits only, blank) become globs that match more; unless
    `exact` (for an exclusion, which must not spare more than Sentry's), where that is an error.
    """
    while len(path) > 1 and path[-1] == DEEP:
        path = path[:-1]  # `x.**`: x's subtree, which `x` covers already
    parts: list[str] = []
    for seg in _deep_first(path):
        if seg.kind != "key":
            parts.append({"one": "*", "deep": "**", "index": "0"}[seg.kind])
            continue
        key = seg.text.replace("'", "*")  # a quote can't be escaped in our selectors: match any character there
        if key.strip() != key or not key:
            key = f"*{key.strip()}*"
        if key.isdigit():  # digits alone would mean a list index
            key = f"{key[:-1]}*{key[-1]}"
        if exact and (key != seg.text or "*" in key or key.startswith(("$", "!", "@"))):
            raise SentrySelectorError(f"relay's selectors can't name exactly the key {seg.text!r}")
        parts.append(f"'{key}'" if "." in key else key)
    return ".".join(parts)


def _deep_first(path: Path) -> Path:
    """`*.**` and `**.*` select the same; write `**` first in each run of wildcards, once."""
    out: list[Seg] = []
    run: list[Seg] = []
    for seg in (*path, None):
        if seg is not None and seg in (ONE, DEEP):
            run.append(seg)
            continue
        out += ([DEEP] if DEEP in run else []) + [ONE] * run.count(ONE)
        run = []
        if seg is not None:
            out.append(seg)
    return tuple(out)


def _compatible(a: Path, b: Path) -> bool:
    """Whether some path is matched by both `a` and `b` (each anchored at the root, matching whole paths)."""

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(a):
            return all(s == DEEP for s in b[j:])
        if j == len(b):
            return all(s == DEEP for s in a[i:])
        x, y = a[i], b[j]
        if x == DEEP:
            return match(i + 1, j) or match(i, j + 1)
        if y == DEEP:
            return match(i, j + 1) or match(i + 1, j)
        return _segments_meet(x, y) and match(i + 1, j + 1)

    return match(0, 0)


def _segments_meet(x: Seg, y: Seg) -> bool:
    if x == ONE or y == ONE:
        return True
    if x.kind != y.kind:
        return False
    return x.kind == "index" or x.text.lower() == y.text.lower()


# -- Sentry's selector grammar ----------------------------------------------------------------------------------

Item = tuple[str, str]  # ("type", "frame"), ("key", "x"), ("index", "0"), ("*", ""), ("**", "")


@dataclass(frozen=True, slots=True)
class _Path:
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    inner: _Node


@dataclass(frozen=True, slots=True)
class _And:
    parts: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    parts: tuple[_Node, ...]


_Node = _Path | _Not | _And | _Or
# Sentry's legacy selector names, still accepted as whole selectors.
_LEGACY = {"freeform": "$string", "email": "$string", "sensitive": "$string", "text": "$string",
           "databag": "$object", "container": "$object"}  # fmt: skip


class _Parser:
    """A recursive-descent parser for Sentry's selector grammar (relay-pii's selector.pest)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> _Node:
        node = self.disjunction()
        self.space()
        if self.pos != len(self.text):
            self.fail("unexpected text")
        return node

    def fail(self, why: str) -> None:
        raise SentrySelectorError(f"invalid selector {self.text!r}: {why} at position {self.pos}")

    def space(self) -> None:
        while self.text.startswith(" ", self.pos):
            self.pos += 1

    def take(self, *tokens: str) -> bool:
        self.space()
        for token in tokens:
            if self.text.startswith(token, self.pos):
                self.pos += len(token)
                return True
        return False

    def disjunction(self) -> _Node:
        parts = [self.conjunction()]
        while self.take("||", "|"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else _Or(tuple(parts))

    def conjunction(self) -> _Node:
        parts = [self.negation()]
        while self.take("&&", "&"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else _And(tuple(parts))

    def negation(self) -> _Node:
        if self.take("!", "~"):
            return _Not(self.operand())
        return self.operand()

    def operand(self) -> _Node:
        if self.take("("):
            node = self.disjunction()
            if not self.take(")"):
                self.fail("expected ')'")
            return node
        self.space()
        items = [self.item()]
        while self.text.startswith(".", self.pos):
            self.pos += 1
            items.append(self.item())
        if sum(kind == "**" for kind, _ in items) > 1:
            self.fail("deep wildcard used more than once")
        if items == [("*", "")]:
            self.fail("wildcard must be part of a path")
        return _Path(tuple(items))

    def item(self) -> Item:
        text, pos = self.text, self.pos
        if text.startswith("**", pos):
            self.pos += 2
            return ("**", "")
        if text.startswith("*", pos):
            self.pos += 1
            return ("*", "")
        if text.startswith("'", pos):
            key: list[str] = []
            self.pos += 1
            while True:
                end = text.find("'", self.pos)
                if end < 0:
                    self.fail("unclosed quote")
                key.append(text[self.pos : end])
                self.pos = end + 1
                if not text.startswith("'", self.pos):
                    break
                key.append("'")  # '' is an escaped quote
                self.pos += 1
            if not "".join(key):
                self.fail("empty quoted key")
            return ("key", "".join(key))
        found = regex.match(r"\$[a-z_]+|[0-9]+|[A-Za-z_][A-Za-z0-9_-]*", text[pos:])
        if found is None:
            self.fail("expected a key, index, type or wildcard")
        assert found is not None
        self.pos += found.end()
        word = found.group()
        kind = "type" if word.startswith("$") else "index" if word.isdigit() else "key"
        return (kind, word.lstrip("$"))


# -- Sentry's value types ---------------------------------------------------------------------------------------

BASIC_TYPES = frozenset({"string", "binary", "number", "boolean", "datetime", "array", "object"})
_TYPE_ALIASES = {"bool": "boolean", "list": "array", "error": "exception", "stack": "stacktrace", "http": "request"}
_STACKTRACES = (
    "stacktrace",
    *(f"{v}.values.*.{s}" for v in ("exception", "threads") for s in ("stacktrace", "raw_stacktrace")),
)
# Where values of each of Sentry's schema types are, in our selector syntax (a superset of Sentry's places).
_TYPE_PATHS: dict[str, tuple[str, ...]] = {
    "replay": ("",),  # replay events are scrubbed from their root, like events
    "exception": ("exception.values.*", "exception.*"),
    "stacktrace": ("**.stacktrace", "**.raw_stacktrace"),
    "frame": ("**.stacktrace.frames.*", "**.raw_stacktrace.frames.*"),
    "request": ("request",),
    "user": ("user",),
    "logentry": ("logentry", "message"),  # a plain `message` string is the log entry's `formatted`
    "message": ("logentry.message", "logentry.formatted", "message"),
    "thread": ("threads.values.*", "threads.*"),
    "breadcrumb": ("breadcrumbs.values.*", "breadcrumbs.*"),
    "span": ("spans.*", "@span"),
    "sdk": ("sdk",),
    "log": ("@log",),
    "trace_metric": ("@trace_metric",),
    "attachments": ("@attachment",),
}
# The same, exactly where Sentry's (normalized) events have them: what an exclusion may spare.
_EXACT_TYPE_PATHS: dict[str, tuple[str, ...]] = {
    "exception": ("exception.values.*",),
    "stacktrace": _STACKTRACES,
    "frame": tuple(f"{p}.frames.*" for p in _STACKTRACES),
    "request": ("request",),
    "user": ("user",),
    "logentry": ("logentry",),
    "message": ("logentry.message", "logentry.formatted", "message"),
    "thread": ("threads.values.*",),
    "breadcrumb": ("breadcrumbs.values.*",),
    "span": ("spans.*",),
    "sdk": ("sdk",),
}
_UNSUPPORTED_TYPES = {
    "minidump": "minidumps",
    "heap_memory": "minidump heap memory",
    "stack_memory": "minidump stack memory",
}
# Schema fields that only ever hold text: a Sentry exclusion of one of them spares nothing nested.
_TEXT_FIELDS = {
    "frame": {"filename", "abs_path", "function", "module", "package", "context_line"},
    "logentry": {"formatted", "message"},
    "exception": {"value", "type"},
    "request": {"url", "method"},
    "user": {"ip_address", "email", "id", "username"},
    "sdk": {"client_ip"},
    "breadcrumb": {"category", "message", "type", "level"},
}


def _type_name(name: str) -> str:
    name = _TYPE_ALIASES.get(name, name)
    if name in _UNSUPPORTED_TYPES:
        raise SentrySelectorError(
            f"`${name}` selects {_UNSUPPORTED_TYPES[name]}, which relay passes on unscrubbed or drops; "
            "its rules can't scrub them"
        )
    if name not in BASIC_TYPES and name not in _TYPE_PATHS and name != "event":
        raise SentrySelectorError(f"unknown value type `${name}`")
    return name


# -- translation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """One alternative (conjunct) of a Sentry selector, in our selector syntax."""

    include: tuple[str, ...]  # empty: everything
    exclude: tuple[str, ...]
    beneath: tuple[str, ...]  # values our `exclude` spares that Sentry's exclusion does not: need a rule of their own
    strings_only: bool  # Sentry selects only strings here (`$string && ...`)
    include_paths: tuple[Path, ...] = ()
    notes: tuple[str, ...] = field(default=())  # how this selects more than Sentry does, for warnings

    def keys_by_parent(self) -> dict[str, list[str]]:
        """If every include ends in a literal key: `keys:` entries by the selector of their parent (else empty).

        A key rule under each parent selects the same values (with keys compared our way, or more).
        """
        groups: dict[str, list[str]] = {}
        for path in self.include_paths:
            if len(path) < 2 or path[-1].kind != "key":
                return {}
            groups.setdefault(render(path[:-1]), []).append(literal_key(path[-1].text))
        return {parent: list(dict.fromkeys(keys)) for parent, keys in groups.items()}


def translate_selector(text: str) -> list[Where]:
    """Our selectors for a Sentry selector: one `Where` per alternative of it (its disjunctive normal form).

    Alternatives with the same exclusions are one for us (`$user.ip_address || $http.env.REMOTE_ADDR`, or
    `$string || $object`, which differ only in the value types they select).
    """
    text = text.strip()
    node = _Parser(_LEGACY.get(text, text)).parse()
    merged: dict[tuple[str, ...], Where] = {}
    for conjunct in _dnf(node, negate=False):
        where = _conjunct(conjunct)
        if where is None:
            continue
        seen = merged.get(where.exclude)
        if seen is not None:
            everything = not seen.include or not where.include
            where = dataclasses.replace(
                seen,
                include=() if everything else tuple(dict.fromkeys(seen.include + where.include)),
                include_paths=() if everything else tuple(dict.fromkeys(seen.include_paths + where.include_paths)),
                beneath=tuple(dict.fromkeys(seen.beneath + where.beneath)),
                strings_only=seen.strings_only and where.strings_only,
                notes=tuple(dict.fromkeys(seen.notes + where.notes)),
            )
        merged[where.exclude] = where
    return list(merged.values())


Literal_ = tuple[bool, tuple[Item, ...]]  # (positive?, path items)


def _dnf(node: _Node, negate: bool) -> list[list[Literal_]]:
    """Disjunctive normal form with negations pushed down to paths; bounded in size."""
    if isinstance(node, _Path):
        return [[(not negate, node.items)]]
    if isinstance(node, _Not):
        return _dnf(node.inner, not negate)
    parts = [_dnf(part, negate) for part in node.parts]
    if isinstance(node, _Or) != negate:  # an Or, or a negated And: the union of the parts
        return [conjunct for part in parts for conjunct in part]
    product = [[lit for conj in combo for lit in conj] for combo in itertools.product(*parts)]
    if len(product) > _MAX_CONJUNCTS:
        raise SentrySelectorError(f"expands to more than {_MAX_CONJUNCTS} alternatives; simplify it")
    return product


def _conjunct(literals: list[Literal_]) -> Where | None:
    notes: list[str] = []
    types: set[str] = set()
    positives: list[list[Path]] = []
    for positive, items in literals:
        if positive and len(items) == 1 and items[0][0] == "type" and _type_name(items[0][1]) in BASIC_TYPES:
            types.add(_type_name(items[0][1]))
        elif positive:
            paths = _our_paths(items, notes)
            positives.append([()] if any(_everything(p) for p in paths) else paths)
    negatives = [items for positive, items in literals if not positive]
    if {items for positive, items in literals if positive} & set(negatives) or [] in positives:
        return None  # `x && !x`, or a path Sentry never matches: selects nothing
    if len(positives) > 1:
        # `a && b`: our selectors can't intersect; the most specific side selects at least the intersection
        positives.sort(key=lambda alts: -min(sum(s.kind == "key" for s in p) for p in alts))
        notes.append("`&&` of two paths: relay applies the rule wherever the more specific one matches")
    include = [] if not positives or () in positives[0] else positives[0]  # (): everything
    exclude: list[str] = []
    beneath: list[str] = []
    for items in negatives:
        if len(items) == 1 and items[0][0] == "type" and _type_name(items[0][1]) in BASIC_TYPES:
            notes.append(f"`!${items[0][1]}` ignored: relay's selectors can't exclude by value type")
            continue
        closed = items[-1][0] == "**"  # `x.**` is everything beneath x: excluding its subtree is exact
        for path in _our_paths(items, notes, exact=True):
            try:
                exclude.append(render(path, exact=True))
            except SentrySelectorError as exc:
                notes.append(f"{exc}: it spares nothing here (stricter)")
                continue
            if not closed and not _text_field(items):
                beneath += [render(p) for p in _beneath(include or [(DEEP,)], path)]
            if _anchors_late(items):
                # Sentry matches `a.b.**` from the first `a` on the path only: where that one isn't followed by `b`
                # but a later one is, it spares nothing; so here there's no exclusion after two `a`s
                beneath.append(render((DEEP, path[1], DEEP, *path[1:])))
    return Where(
        include=tuple(dict.fromkeys(render(p) for p in include)),
        exclude=tuple(dict.fromkeys(exclude)),
        beneath=tuple(dict.fromkeys(beneath)),
        strings_only=types == {"string"},
        include_paths=tuple(include),
        notes=tuple(notes),
    )


def _anchors_late(items: tuple[Item, ...]) -> bool:
    """A `**` after two items or more, the first a key: Sentry anchors them at that key's first occurrence."""
    deep = next((i for i, (kind, _) in enumerate(items) if kind == "**"), 0)
    return deep > 1 and items[0][0] == "key"


def _everything(path: Path) -> bool:
    """`**`, `**.*`: every value (the root, which has no key, is never one a rule applies to)."""
    return all(seg in (ONE, DEEP) for seg in path) and path.count(ONE) <= 1 and (DEEP in path or not path)


def _text_field(items: tuple[Item, ...]) -> bool:
    """`$frame.filename`, `$http.headers.x`: a field that only holds text (nothing nested to spare)."""
    if len(items) == 2 and items[0][0] == "type" and items[1][0] == "key":
        return items[1][1].lower() in _TEXT_FIELDS.get(_TYPE_ALIASES.get(items[0][1], items[0][1]), set())
    return len(items) == 3 and items[0] in (("type", "request"), ("type", "http")) and items[1] == ("key", "headers")


def _our_paths(items: tuple[Item, ...], notes: list[str], exact: bool = False) -> list[Path]:
    """Our paths (alternatives, anchored at the root) for the values a Sentry path matches.

    For an include they may match more (`exact=False`); for an exclusion they match no value Sentry's doesn't,
    or the selector is refused. Sentry walks a `**` selector's head from the root and anchors it at the first
    match, which is the root itself for `*`: such a selector starts at the root.
    """
    deep = next((i for i, (kind, _) in enumerate(items) if kind == "**"), None)
    kind, text = items[0]
    if kind == "type" and _type_name(text) == "event":
        return []  # the root, which Sentry's selectors never reach (so neither does anything under `$event`)
    if any(k == "type" and _type_name(t) == "event" for k, t in items[1:]):
        return []  # `$event` is only ever the root
    if exact and any(
        k == "index" or (k == "type" and (i or _type_name(t) in BASIC_TYPES)) for i, (k, t) in enumerate(items)
    ):
        notes.append(
            f"exclusion {_text(items)}: relay's selectors can't name one list element or a value type, so it spares "
            "nothing here (stricter)"
        )
        return []
    if kind == "*" and deep:  # (a selector is no longer than the path, so here `**` spans two segments or more)
        return [
            tuple(s for item in items[1:] for s in ((ONE, ONE, DEEP) if item[0] == "**" else _segments(item, notes)))
        ]
    tail = tuple(seg for item in items[1:] for seg in _segments(item, notes))
    if kind != "type":
        return [(DEEP, *_segments(items[0], notes), *tail)]  # Sentry matches a path's end: anything before it
    name = _type_name(text)
    if name in BASIC_TYPES:  # a value of that type, wherever it is
        return [(DEEP, ONE, *tail)]
    if name == "attachments" and tail:
        notes.append("`$attachments` paths: relay scrubs each text attachment whole, so the rule covers all")
        tail = ()
    if name == "replay":
        notes.append("`$replay`: relay scrubs replay events from the root as it does all events, so this covers all")
    table = _EXACT_TYPE_PATHS if exact else _TYPE_PATHS
    paths = [_path(p) + tail for p in table.get(name, ())]
    if name == "logentry" and tail[:1] == (Seg("key", "formatted"),):
        paths.append((Seg("key", "message"), *tail[1:]))  # a plain `message` string is the log entry's text
    return paths


def _text(items: tuple[Item, ...]) -> str:
    """A Sentry path, written back."""
    return ".".join("$" + t if k == "type" else t or k for k, t in items)


def _segments(item: Item, notes: list[str]) -> tuple[Seg, ...]:
    kind, text = item
    if kind == "key":
        return (Seg("key", text),)
    if kind == "index":
        notes.append(f"index {text}: relay's selectors match every list element, not only element {text}")
        return (INDEX,)
    if kind == "*":
        return (ONE,)
    if kind == "**":
        return (ONE, DEEP)  # Sentry's `**` spans one segment or more
    _type_name(text)
    return (ONE,)  # one value of that type: any one value


def _beneath(includes: list[Path], excluded: Path) -> list[Path]:
    """Paths covering the values `includes` match that lie strictly beneath a value `excluded` matches.

    Such a value's path splits into the excluded value's path, which `excluded` and a head of the include both
    match, and the rest of the include (at least one segment). Splits fall between segments or inside a `**`.
    """
    out: list[Path] = []
    for include in includes:
        splits = [(include[:k], include[k:]) for k in range(1, len(include))]
        splits += [(include[: i + 1], include[i:]) for i, seg in enumerate(include) if seg == DEEP]
        for head, rest in splits:
            if _compatible(excluded, head):
                tail = rest if any(seg != DEEP for seg in rest) else (ONE,)
                out += [(*meet, *tail) for meet in _meet(head, excluded)]
    kept: list[Path] = []
    for path in out:  # drop what another path covers
        if not any(_covers(other, path) for other in kept):
            kept = [other for other in kept if not _covers(path, other)] + [path]
    return kept


def _meet(head: Path, excluded: Path) -> list[Path]:
    """Paths covering every path both `head` and `excluded` match (exactly, where the shapes allow)."""
    tail = excluded[1:]
    size = len(tail)
    if excluded[:1] != (DEEP,) or not size or DEEP in tail:
        return [excluded]
    if head[-1:] == (DEEP,):  # the excluded key(s) inside what `**` spans; one key can't overlap what precedes it
        return [head + tail] if size == 1 else [head + tail, excluded]
    if len(head) <= size or DEEP in head[-size:]:
        return [excluded]
    return [head[:-size] + tuple(y if x == ONE else x for x, y in zip(head[-size:], tail, strict=True))]


def _covers(q: Path, p: Path) -> bool:
    """Whether selector `q` selects everything `p` does (both covering subtrees); False when unsure."""

    @functools.cache
    def within(i: int, j: int) -> bool:  # q[i:] matches every path p[j:] matches, or a prefix of each
        if i == len(q):
            return True
        if q[i] == DEEP:
            return within(i + 1, j) or (j < len(p) and within(i, j + 1))
        if j == len(p) or p[j] == DEEP:
            return False
        return (q[i] == ONE or (_segments_meet(q[i], p[j]) and p[j] != ONE)) and within(i + 1, j + 1)

    return within(0, 0)


# -- shortcuts, for readable output -----------------------------------------------------------------------------


def abbreviate(selectors: list[str]) -> list[str]:
    """Rewrite selectors with our type shortcuts (`$frame.vars`) where that selects exactly the same."""
    out = list(selectors)
    for name, expansion in sorted(SHORTCUTS.items(), key=lambda item: -len(item[1][0])):
        if not expansion[0]:
            continue
        for selector in list(out):
            head = expansion[0]
            if selector != head and not selector.startswith(head + "."):
                continue
            tail = selector[len(head) :]
            group = [alt + tail for alt in expansion]
            if selector in out and all(g in out for g in group) and _expands_to(name + tail, group):
                at = out.index(selector)
                out = [s for s in out if s not in group]
                out.insert(min(at, len(out)), name + tail)
    return out


def _expands_to(selector: str, alternatives: list[str]) -> bool:
    try:
        validate_selector(selector)
        return sorted(expand(selector)) == sorted(alternatives)
    except SelectorError:
        return False


# -- key patterns -----------------------------------------------------------------------------------------------

_SEPARATORS = "_- ."  # what normalize_key drops from key names
_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
          "word": "\\w", "space": "\\s", "xdigit": "0-9a-fA-F", "punct": "!-/:-@\\[-`{-~", "blank": " \\t",
          "cntrl": "\\x00-\\x1f"}  # fmt: skip


def key_patterns(pattern: str) -> list[str]:
    """Our `keys:` entries matching the normalized form of every key in which `pattern` finds a match."""
    try:
        body = _KeyPattern(pattern).translate()
    except SentrySelectorError as exc:
        raise SentrySelectorError(f"key pattern {pattern!r}: {exc}") from None
    while body.startswith("(?:") and _group_end(body, 0) == len(body) - 1:
        body = body[3:-1]  # `(a|b)`: the alternatives are the entries
    entries = []
    for branch in _top_level_branches(body):
        head = "" if branch.startswith("^") else ".*"
        tail = "" if branch.endswith("$") and not branch.endswith("\\$") else ".*"
        core = branch[1 if head == "" else 0 : len(branch) - (1 if tail == "" else 0)]
        entries.append(f"{head}{core}{tail}" if core else ".*")
    for entry in entries:
        try:
            regex.compile(normalize_key_pattern(entry))
        except regex.error as exc:  # pragma: no cover - the translation emits only what compiles
            raise SentrySelectorError(f"key pattern {pattern!r} can't be translated: {exc}") from None
    return list(dict.fromkeys(entries))


def _top_level_branches(body: str) -> list[str]:
    branches, depth, start, pos = [], 0, 0, 0
    while pos < len(body):
        ch = body[pos]
        if ch == "\\":
            pos += 1
        elif ch == "[":
            pos = _class_end(body, pos)
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(body[start:pos])
            start = pos + 1
        pos += 1
    return [*branches, body[start:]]


def _group_end(text: str, pos: int) -> int:
    """The index of the `)` closing the group opened at `pos` (in our own output)."""
    depth = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "\\":
            pos += 1
        elif ch == "[":
            pos = _class_end(text, pos)
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    return -1


def _class_end(text: str, pos: int) -> int:
    """The index of the `]` closing the class opened at `pos` (in our own output: no nesting)."""
    pos += 1
    if text.startswith("^", pos):
        pos += 1
    if text.startswith("]", pos):
        pos += 1
    while text[pos] != "]":
        pos += 2 if text[pos] == "\\" else 1
    return pos


class _KeyPattern:
    """Rewrites a (Rust) regex over raw key names into one over normalized names.

    A separator in the pattern (`card_number`) is dropped; an atom that could match a separator (`.`, `\\W`,
    `[-_x]`) becomes optional. Case is ignored anyway. Look-arounds and back-references (which Sentry's regex
    engine doesn't support either) are refused.
    """

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.verbose = False

    def translate(self) -> str:
        body = self.alternation()
        if self.i < len(self.p):
            raise SentrySelectorError(f"unbalanced ')' at position {self.i}")
        return body

    def peek(self) -> str:
        self.skip()
        return self.p[self.i] if self.i < len(self.p) else ""

    def skip(self) -> None:
        while self.verbose and self.i < len(self.p):
            if self.p[self.i].isspace():
                self.i += 1
            elif self.p[self.i] == "#":
                end = self.p.find("\n", self.i)
                self.i = len(self.p) if end < 0 else end + 1
            else:
                break

    def alternation(self) -> str:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return "|".join(branches)

    def sequence(self) -> str:
        out = []
        while self.peek() not in ("", "|", ")"):
            atom, kind = self.atom()
            high, text = self.quantifier()
            if kind in ("sep", "empty"):
                continue  # normalized keys have no separators: drop it, and its repetition
            if kind == "anchor":
                out.append(atom)
            elif kind == "maybe":  # it may have matched a separator only: allow it to be absent
                out.append(atom + ("?" if text == "" else "*" if high is None else f"{{0,{high}}}"))
            else:
                out.append(atom + text)
        return "".join(out)

    def quantifier(self) -> tuple[int | None, str]:
        """The repetition after an atom: its maximum (None: unbounded) and its text, for `{1,2}`, `*`..."""
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.i += 1
            high, text = (1 if ch == "?" else None), ch
        else:
            found = regex.match(r"\{(\d*)(,?)(\d*)\}", self.p[self.i :]) if ch == "{" else None
            if found is None:
                return 1, ""
            self.i += found.end()
            low = int(found.group(1) or 0)
            high = int(found.group(3)) if found.group(3) else (None if found.group(2) else low)
            text = f"{{{low},{'' if high is None else high}}}" if found.group(2) else f"{{{low}}}"
        if self.i < len(self.p) and self.p[self.i] in "?+":  # lazy or possessive: the same keys match
            self.i += 1
        return high, text

    def atom(self) -> tuple[str, str]:
        ch = self.p[self.i]
        self.i += 1
        if ch == "(":
            return self.group()
        if ch == "[":
            return self.char_class()
        if ch == "\\":
            return self.escape()
        if ch == ".":
            return ".", "maybe"
        if ch in "^$":
            return ch, "anchor"
        if ch in "*+?{":
            raise SentrySelectorError(f"nothing to repeat at position {self.i - 1}")
        return _literal(ch)

    def group(self) -> tuple[str, str]:
        found = regex.match(r"\?(?:P?<[A-Za-z_][A-Za-z0-9_]*>|([a-zA-Z-]*)([:)])|([=!]|<[=!]))?", self.p[self.i :])
        if found is not None and found.group(3):
            raise SentrySelectorError("look-around is not supported (nor is it by Sentry)")
        if found is not None and found.end() == 1:
            raise SentrySelectorError(f"unsupported group syntax at position {self.i - 1}")
        if found is not None:
            self.i += found.end()
            if found.group(1) and "x" in found.group(1).split("-")[0]:
                self.verbose = True
            if found.group(2) == ")":
                return "", "empty"  # flags only: case is ignored anyway, the rest doesn't change which keys match
        inner = self.alternation()
        if self.peek() != ")":
            raise SentrySelectorError("unclosed group")
        self.i += 1
        return (f"(?:{inner})", "plain") if inner else ("", "empty")

    def escape(self) -> tuple[str, str]:
        if self.i >= len(self.p):
            raise SentrySelectorError("pattern ends with a backslash")
        ch = self.p[self.i]
        self.i += 1
        simple = {
            "d": ("\\d", "plain"),
            "D": ("[^\\d]", "maybe"),
            "w": ("\\w", "maybe"),
            "W": ("[^\\w]", "maybe"),
            "s": ("\\s", "maybe"),
            "S": ("[^\\s]", "maybe"),
            "b": ("", "empty"),
            "B": ("", "empty"),
            "A": ("^", "anchor"),
            "z": ("$", "anchor"),
            "<": ("", "empty"),
            ">": ("", "empty"),
        }
        if ch in simple:
            return simple[ch]
        code = self.code_point(ch)
        if code is not None:
            return _literal(chr(code))
        if ch.isalnum():
            raise SentrySelectorError(f"escape \\{ch} is not supported in key patterns")
        return _literal(ch)

    def code_point(self, ch: str) -> int | None:
        controls = {"n": 10, "t": 9, "r": 13, "f": 12, "v": 11, "a": 7, "e": 27}
        if ch in controls:
            return controls[ch]
        if ch not in "xuU":
            return None
        digits = {"x": 2, "u": 4, "U": 8}[ch]
        found = regex.match(rf"\{{([0-9a-fA-F]+)\}}|[0-9a-fA-F]{{{digits}}}", self.p[self.i :])
        if found is None:
            raise SentrySelectorError(f"invalid escape \\{ch}")
        self.i += found.end()
        return int(found.group(1) or found.group(0), 16)

    def char_class(self) -> tuple[str, str]:
        items: list[str] = []
        negated = self.p.startswith("^", self.i)
        self.i += negated
        first = True
        only_separators = not negated  # made of separator characters alone: it matches nothing in a normal key
        while True:
            if self.i >= len(self.p):
                raise SentrySelectorError("unclosed character class")
            ch = self.p[self.i]
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if self.p.startswith("[:", self.i):
                end = self.p.find(":]", self.i)
                name = self.p[self.i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise SentrySelectorError(f"character class [:{name}:] is not supported")
                items.append(_POSIX[name])
                only_separators = False
                self.i = end + 2
            elif ch == "[" or self.p.startswith(("&&", "--", "~~"), self.i):
                raise SentrySelectorError("nested character classes and class operations are not supported")
            elif ch == "\\":
                self.i += 1
                esc = self.p[self.i] if self.i < len(self.p) else ""
                self.i += 1
                only_separators &= esc in _SEPARATORS
                if esc in "dws":
                    items.append("\\" + esc)
                elif esc.isalnum():
                    code = self.code_point(esc)
                    if code is None:
                        raise SentrySelectorError(f"escape \\{esc} in a character class is not supported")
                    items.append(_class_char(chr(code)))
                else:
                    items.append(_class_char(esc))
            elif ch == "-" and items and not self.p.startswith("]", self.i + 1):
                items.append("-")  # a range
                only_separators = False
                self.i += 1
            else:
                items.append(_class_char(ch))
                only_separators &= ch in _SEPARATORS
                self.i += 1
        text = "[" + ("^" if negated else "") + "".join(items) + "]"
        if only_separators:
            return "", "sep"
        compiled = regex.compile(text, regex.IGNORECASE)
        return text, "maybe" if any(compiled.fullmatch(sep) for sep in _SEPARATORS) else "plain"


def _literal(ch: str) -> tuple[str, str]:
    if ch in _SEPARATORS:
        return "", "sep"
    return (ch.lower() if ch.isalnum() else regex.escape(ch)), "plain"


def _class_char(ch: str) -> str:
    """One character inside a class, written so that lowercasing (normalize_key_pattern) keeps its meaning."""
    if ch.isalnum() or ch == "_":
        return ch.lower()
    if ch in "\\]^-[":
        return "\\" + ch
    return ch if ch.isprintable() or ord(ch) > 255 else f"\\x{ord(ch):02x}"


def literal_key(key: str) -> str:
    """A `keys:` entry for exactly this key name."""
    return regex.escape(normalize_key(key)) or ".*"


__all__ = ["DEEP", "INDEX", "ONE", "SentrySelectorError", "Where", "abbreviate", "key_patterns", "literal_key",
           "render", "translate_selector"]  # fmt: skip
