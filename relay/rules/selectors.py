"""Selectors: a small path language over events, compiled to one regex on "shapes".

A shape is the path of a node with array indices written as `#`, segments joined by \\x1f:
`exception\\x1fvalues\\x1f#\\x1fstacktrace\\x1fframes\\x1f#\\x1fvars\\x1fpassword`.

Syntax: dotted keys (`request.headers`), `*` (one segment), `**` (any number of segments),
quoted keys with dots (`data.'http.query'`), type shortcuts (`$frame.vars`, `$user`, ...), and
`!selector` for exclusion. A selector matches a node and everything beneath it.
"""

from __future__ import annotations

import re

import regex

SEP = "\x1f"

# Type shortcuts, written in the same selector syntax.
SHORTCUTS: dict[str, tuple[str, ...]] = {
    "$event": ("",),
    "$exception": ("exception.values.*", "exception.*"),
    "$exception.value": ("exception.values.*.value",),
    "$exception.type": ("exception.values.*.type",),
    "$stacktrace": ("**.stacktrace",),
    "$frame": ("**.stacktrace.frames.*",),
    "$frame.vars": ("**.stacktrace.frames.*.vars",),
    "$frame.filename": ("**.stacktrace.frames.*.filename",),
    "$frame.abs_path": ("**.stacktrace.frames.*.abs_path",),
    "$frame.function": ("**.stacktrace.frames.*.function", "**.stacktrace.frames.*.raw_function"),
    "$frame.module": ("**.stacktrace.frames.*.module", "**.stacktrace.frames.*.package"),
    "$frame.context": (
        "**.stacktrace.frames.*.context_line",
        "**.stacktrace.frames.*.pre_context",
        "**.stacktrace.frames.*.post_context",
    ),
    "$message": ("logentry", "message"),
    "$request": ("request",),
    "$request.url": ("request.url",),
    "$request.headers": ("request.headers",),
    "$request.cookies": ("request.cookies",),
    "$request.query_string": ("request.query_string",),
    "$request.data": ("request.data",),
    "$request.env": ("request.env",),
    "$user": ("user",),
    "$breadcrumb": ("breadcrumbs.values.*", "breadcrumbs.*"),
    "$span": ("spans.*", "@span"),
    "$contexts": ("contexts",),
    "$extra": ("extra",),
    "$tags": ("tags",),
    "$log": ("@log",),
    "$session": ("@session", "@sessions"),
    "$feedback": ("@user_report", "contexts.feedback"),
    "$check_in": ("@check_in",),
    "$trace": ("@envelope.trace",),
    "$sdk": ("sdk",),
    "$debug_meta": ("debug_meta",),
    "$security": ("@security",),
    "$profile": ("@profile",),
    "$attachment": ("@attachment",),
}


class SelectorError(ValueError):
    """A selector could not be parsed."""


def _split(selector: str) -> list[str]:
    """Split on dots outside single quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in selector:
        if ch == "'":
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise SelectorError(f"unclosed quote in selector {selector!r}")
    parts.append("".join(current))
    return parts


def _segments_regex(selector: str) -> str:
    while selector.endswith(".**"):  # a selector already covers everything beneath it
        selector = selector[:-3]
    if selector == "":
        return ""
    regex_parts: list[str] = []
    for part in _split(selector):
        if part == "":
            raise SelectorError(f"empty segment in selector {selector!r}")
        if part == "**":
            regex_parts.append(f"(?:[^{SEP}]*(?:{SEP}[^{SEP}]*)*)")
        elif part == "*":
            regex_parts.append(f"[^{SEP}]+")
        elif part.isdigit():
            regex_parts.append("#")
        elif "*" in part:
            regex_parts.append(f"[^{SEP}]*".join(re.escape(p) for p in part.split("*")))
        else:
            regex_parts.append(re.escape(part))
    joined = SEP.join(regex_parts)
    # "**" may stand for zero segments: let "a.**.b" match "a.b" too.
    return joined.replace(f"{SEP}(?:[^{SEP}]*(?:{SEP}[^{SEP}]*)*){SEP}", f"(?:{SEP}[^{SEP}]*)*{SEP}").replace(
        f"(?:[^{SEP}]*(?:{SEP}[^{SEP}]*)*){SEP}", f"(?:[^{SEP}]*{SEP})*"
    )


def expand(selector: str) -> list[str]:
    """Selector alternatives after replacing a leading type shortcut."""
    selector = selector.strip()
    if not selector.startswith("$"):
        return [selector]
    name = selector.partition(".")[0]
    # Longest shortcut first: `$frame.vars.password` uses `$frame.vars`.
    for candidate in sorted(SHORTCUTS, key=len, reverse=True):
        if selector == candidate or selector.startswith(candidate + "."):
            tail = selector[len(candidate) + 1 :]
            return [f"{base}.{tail}".strip(".") if tail else base for base in SHORTCUTS[candidate]]
    raise SelectorError(f"unknown type shortcut {name!r}; known: {', '.join(sorted(SHORTCUTS))}")


class Selector:
    """A compiled set of include and exclude selectors."""

    __slots__ = ("_exclude", "_include", "_include_partial", "matches_everything", "source")

    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self.source = (tuple(include), tuple(exclude))
        includes = [s for s in include if not s.startswith("!")]
        excludes = list(exclude) + [s[1:] for s in include if s.startswith("!")]
        self.matches_everything = not includes or "**" in includes
        self._include = None if self.matches_everything else _compile(includes)
        self._include_partial = (
            None if self._include is None else regex.compile(self._include.pattern, regex.IGNORECASE | regex.DOTALL)
        )
        self._exclude = _compile(excludes) if excludes else None

    def may_match_within(self, shape: str) -> bool:
        """Whether this node or anything beneath it could be selected (False lets the engine skip a subtree)."""
        if self._exclude is not None and self._exclude.match(shape):
            return False  # exclusions cover whole subtrees
        if self._include is None or self._include.match(shape):
            return True
        assert self._include_partial is not None
        prefix = shape + SEP if shape else ""
        return self._include_partial.fullmatch(prefix, partial=True) is not None

    def matches(self, shape: str) -> bool:
        """Whether a node with this shape (or an ancestor) is selected."""
        if self._include is not None and not self._include.match(shape):
            return False
        return not (self._exclude is not None and self._exclude.match(shape))


def _compile(selectors: list[str]) -> re.Pattern[str]:
    alternatives: list[str] = []
    for selector in selectors:
        for expanded in expand(selector):
            body = _segments_regex(expanded)
            alternatives.append(f"{body}(?:{SEP}.*)?" if body else ".*")
    return re.compile(f"(?:{'|'.join(alternatives)})\\Z", re.IGNORECASE | re.DOTALL)


def validate_selector(selector: str) -> None:
    """Raise SelectorError if the selector cannot be compiled."""
    _compile([selector.lstrip("!")])
